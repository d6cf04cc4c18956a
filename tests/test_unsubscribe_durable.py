"""Unsubscribes are never lost: a real `serve` (uvicorn on 127.0.0.1) while the database cannot take them.

Another process holds the database's write lock (SQLite's BEGIN EXCLUSIVE, PostgreSQL's LOCK TABLE),
or the SQLite file is moved away: the one-click POST still answers 200 within a few seconds, the
unsubscribe is kept in a journal next to the database (fsynced, mode 0600), `/healthz` says 503, the
log never names the address, and the unsubscribe lands in the database as soon as it is writable
again (the next request, or the next send, folds the journal in).
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from newsletter.config import Config, load_config
from newsletter.render.mime import list_id
from newsletter.render.unsubscribe import make_token
from newsletter.state.engine import dispose_all, engine_for
from newsletter.state.suppressions import reason_for
from newsletter.state.unsubscribes import journal_path, keep

from .helpers import Cli, config_of
from .live import LiveServer

pytestmark = pytest.mark.usefixtures("database")
SECRET = "test-secret-0123456789abcdefghijklmnop"
ENV = {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org"}
HOLDER = r"""
import sys
from sqlalchemy import create_engine
url, kind = sys.argv[1], sys.argv[2]
if kind == "sqlite":
    import sqlite3
    conn = sqlite3.connect(url, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
else:
    import psycopg
    conn = psycopg.connect(url)
    conn.execute("LOCK TABLE suppressions IN ACCESS EXCLUSIVE MODE")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def config(cli: Cli) -> Config:
    cli.env.update(ENV)
    return load_config(cli.folder / "newsletter.toml", env={**os.environ, **cli.env})


@contextmanager
def write_locked(config: Config) -> Iterator[None]:
    """Another process holds the database's write lock until the block ends."""
    engine_for(config)  # the schema exists first
    kind = "postgresql" if config.state_is_url else "sqlite"
    target = config.paths.state if config.state_is_url else str(config.path("state"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, target, kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=20)


def one_click(server: LiveServer, config: Config, address: str) -> httpx.Response:
    token = make_token(SECRET, list_id(config), address)
    return httpx.post(f"{server.url}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, timeout=20)


def test_the_one_click_post_while_another_process_holds_the_write_lock(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with LiveServer(config) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        with write_locked(config):
            health = httpx.get(f"{server.url}/healthz", timeout=20)
            assert health.status_code == 503 and "not writable" in health.text
            response = one_click(server, config, "ada@example.com")
            assert response.status_code == 200 and "You are unsubscribed" in response.text
            journal = journal_path(config)
            assert journal.exists() and stat.S_IMODE(journal.stat().st_mode) == 0o600
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # writable again: the journal is folded in
        assert reason_for(engine_for(config), "ada@example.com") == "unsubscribed"
        assert not journal.exists() or journal.read_bytes() == b""
    assert "ada@example.com" not in caplog.text
    assert "unsubscribe journal" in caplog.text


def test_the_database_moved_away_from_under_serve(config: Config, folder: Path) -> None:
    if config.state_is_url:
        pytest.skip("a PostgreSQL database is not a file")
    with LiveServer(config) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        db = config.path("state")
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{db}{suffix}").exists():
                os.rename(f"{db}{suffix}", folder / f"moved{suffix}")
        assert httpx.get(f"{server.url}/healthz").status_code == 503
        response = one_click(server, config, "grace@example.org")
        assert response.status_code == 200
        assert not db.exists()  # serve did not make a new, empty database in its place
        for suffix in ("", "-wal", "-shm"):
            if (folder / f"moved{suffix}").exists():
                os.rename(folder / f"moved{suffix}", f"{db}{suffix}")
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    dispose_all()
    assert reason_for(engine_for(config), "grace@example.org") == "unsubscribed"


def test_send_folds_the_unsubscribe_journal_before_reading_the_list(cli: Cli, config: Config) -> None:
    keep(config, "grace@example.org", "one-click via test at 2026-11-30T08:00:00Z")
    result = cli("send", "2026-11-09-tls-certificates", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    assert "grace" not in " ".join(p.name for p in (cli.folder / "outbox").glob("*/*.eml"))
    assert reason_for(engine_for(config_of(cli)), "grace@example.org") == "unsubscribed"
    assert not journal_path(config).exists() or journal_path(config).read_bytes() == b""
