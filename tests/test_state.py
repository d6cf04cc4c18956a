"""The state layer: schema versions and upgrades, SQLite or PostgreSQL, one-line errors, the lock."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.command import upgrade
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, update

from newsletter.config import load_config
from newsletter.errors import ConfigError
from newsletter.state.engine import dispose_all, engine_for
from newsletter.state.lock import Lock
from newsletter.state.migrate import HEAD, MIGRATIONS, current_revision
from newsletter.state.schema import locks, metadata

from .helpers import DATA, POSTGRES_ADMIN_URL, Cli, config_of

LEGACY = DATA / "state-0.1.0.sqlite"  # written by release 0.1.0: a sent article, a digest, a suppression


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_a_database_written_by_release_0_1_0_is_upgraded_in_place_with_one_line(cli: Cli, folder: Path) -> None:
    state = folder / "newsletter.db"
    shutil.copyfile(LEGACY, state)
    before = {t: _rows(state, f"SELECT * FROM {t} ORDER BY 1") for t in ("campaigns", "deliveries", "suppressions")}
    result = cli("status")
    assert result.exit_code == 0, result.output
    assert result.stderr == f"newsletter: upgraded the state database newsletter.db (schema 0001 -> {HEAD})\n"
    assert "2026-11-23-welcome [d7b224001944fc46]: finished; 4 sent of 4" in result.stdout
    assert "digest-2026-W48 [9ccd150a362a1807]: finished; 3 sent, 1 skipped of 4" in result.stdout
    after = {t: _rows(state, f"SELECT * FROM {t} ORDER BY 1") for t in before}
    width = len(before["campaigns"][0])  # columns added since (message_key, revision 0006) come after
    assert {t: [row[:width] if t == "campaigns" else row for row in rows] for t, rows in after.items()} == before
    # Campaigns made before keep the Message-IDs they were sent with: key, content hash (and round).
    assert _rows(state, "SELECT message_key FROM campaigns ORDER BY id") == [
        ("2026-11-23-welcome:d7b224001944fc46",),
        ("digest-2026-W48:9ccd150a362a1807",),
    ]
    assert _rows(state, "SELECT version_num FROM alembic_version") == [(HEAD,)]
    tables = {name for (name,) in _rows(state, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "locks" in tables and "campaign_locks" not in tables
    # Once current, nothing more is said; and the earlier campaign is still "already sent".
    again = cli("send", "latest", "--yes")
    assert again.exit_code == 2 and "upgraded" not in again.stderr
    assert "campaign 2026-11-23-welcome was already sent (4 sent" in again.stderr


def test_db_upgrade_command(cli: Cli, folder: Path) -> None:
    shutil.copyfile(LEGACY, folder / "newsletter.db")
    result = cli("db", "upgrade")
    assert result.exit_code == 0
    assert f"upgraded the state database newsletter.db (schema 0001 -> {HEAD})" in result.stderr
    assert result.stdout == f"newsletter.db: schema is current ({HEAD})\n"
    dispose_all()
    assert cli("db", "upgrade").stderr == ""


@pytest.mark.usefixtures("database")
def test_the_migrations_build_exactly_the_schema_the_code_declares(folder: Path) -> None:
    """Alembic's upgrade from nothing and schema.py (create_all) must never drift apart."""
    config = load_config(folder / "newsletter.toml", env={})
    engine = create_engine(config.state_url)
    with engine.begin() as conn:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        upgrade(cfg, "head")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []
    assert current_revision(engine_for(config)) == HEAD  # opened as current: nothing to do


@pytest.mark.usefixtures("database")
def test_a_new_database_is_created_and_stamped(cli: Cli) -> None:
    assert cli("status").output == "no campaigns yet\n"
    assert current_revision(engine_for(config_of(cli))) == HEAD


@pytest.mark.e2e
def test_two_processes_creating_a_new_file_at_once(folder: Path) -> None:
    code = "from newsletter.cli import main; main()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, "status"],
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    assert all(out == "no campaigns yet\n" and err == "" for out, err in outputs), outputs


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"this is not a database, it is a text file" * 100, "file is not a database"),
        (b"", ""),  # an empty file is a new database
    ],
)
def test_a_corrupt_state_file_is_one_line(cli: Cli, folder: Path, content: bytes, expected: str) -> None:
    (folder / "newsletter.db").write_bytes(content)
    result = cli("status")
    if not expected:
        assert result.exit_code == 0 and result.output == "no campaigns yet\n"
        return
    assert result.exit_code == 1
    assert result.stderr == (
        f"newsletter: error: newsletter.db: cannot open the state database ({expected}); "
        f"check [paths] state, or restore the file from a backup\n"
    )


def test_someone_elses_database_is_refused(cli: Cli, folder: Path) -> None:
    with sqlite3.connect(folder / "newsletter.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
    result = cli("status")
    assert result.exit_code == 1
    assert result.stderr == (
        "newsletter: error: newsletter.db: it holds other tables and no newsletter schema; check [paths] state\n"
    )


def test_a_postgresql_url_with_a_password_only_from_the_environment(folder: Path) -> None:
    config = folder / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('state = "newsletter.db"', 'state = "postgresql://nl:s3cret@db.example/nl"'))
    with pytest.raises(ConfigError, match=r"\[paths\] state: the URL holds a password, and secrets are not read"):
        load_config(config, env={})
    config.write_text(text.replace('state = "newsletter.db"', 'state = "postgresql://nl@db.example/nl"'))
    assert load_config(config, env={}).state_url == "postgresql+psycopg://nl@db.example/nl"
    from_env = load_config(config, env={"NEWSLETTER_PATHS_STATE": "postgresql://nl:s3cret@db.example:5433/nl"})
    assert from_env.state_url == "postgresql+psycopg://nl:s3cret@db.example:5433/nl"
    assert from_env.state_shown == "postgresql://nl@db.example:5433/nl"  # messages never show the password
    with pytest.raises(ConfigError, match=r"mysql:// is not supported"):
        load_config(config, env={"NEWSLETTER_PATHS_STATE": "mysql://nl@db/nl"})


def test_an_unreachable_postgresql_server_is_one_line(cli: Cli) -> None:
    cli.env["NEWSLETTER_PATHS_STATE"] = "postgresql://nobody@127.0.0.1:1/nothing"
    result = cli("status")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "newsletter: error: postgresql://nobody@127.0.0.1:1/nothing: cannot open the state database ("
    )
    assert result.stderr.count("\n") == 1 and "sqlalche.me" not in result.stderr


@pytest.mark.usefixtures("database")
def test_one_lock_dead_holders_at_once_silent_ones_after_a_while(cli: Cli) -> None:
    engine = engine_for(config_of(cli))
    first, second = Lock(engine, "campaign:x"), Lock(engine, "campaign:x")
    assert first.try_acquire() and first.try_acquire()  # taking it again is renewing it
    assert not second.try_acquire()  # a live holder (this process): refused
    holder = second.holder()
    assert holder is not None and holder.pid == os.getpid() and holder.owner == first.owner
    with engine.begin() as conn:  # the holder died (same host, no such process): taken over at once
        conn.execute(update(locks).values(pid=2**22 + 12345))
    assert second.try_acquire() and not first.renew()
    with engine.begin() as conn:  # the holder is on another machine and silent for two minutes
        conn.execute(
            update(locks).values(
                host="elsewhere", heartbeat_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=2)
            )
        )
    third = Lock(engine, "campaign:x")
    assert third.try_acquire()
    other = Lock(engine, "digest")  # another name: independent
    assert other.try_acquire()
    third.release()
    assert Lock(engine, "campaign:x").try_acquire()


@pytest.mark.e2e
@pytest.mark.skipif(not POSTGRES_ADMIN_URL, reason="no PostgreSQL server given: set NL_TEST_POSTGRES_URL")
def test_postgresql_without_the_driver_is_one_line(tmp_path: Path) -> None:
    """The state URL names PostgreSQL but psycopg is missing: say how to install it."""
    script = "import sys; sys.modules['psycopg'] = None\nfrom newsletter.cli import main; main()\n"
    env = {**os.environ, "NEWSLETTER_PATHS_STATE": POSTGRES_ADMIN_URL}
    (tmp_path / "newsletter.toml").write_text("", encoding="utf-8")  # a newsletter folder
    result = subprocess.run(
        [sys.executable, "-c", script, "status"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "PostgreSQL needs the psycopg driver; install it with pip install 'quillpost[postgresql]'" in result.stderr
