"""Files that hold personal data are 0600 and their new folders 0700 under a umask of 022; the public site is not.

The state database with its -wal and -shm, outbox messages, render's files, send journals and exports.
A file that exists keeps the mode its owner gave it (an export over an earlier export).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.send.journal import Journal
from newsletter.state.engine import engine_for

from .helpers import Cli, config_of

TLS = "2026-11-09-tls-certificates"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: new files 0644, folders 0755
    try:
        yield
    finally:
        os.umask(old)


def test_outbox_messages_and_the_state_database_are_private(cli: Cli, folder: Path) -> None:
    assert cli("send", TLS, "--yes").exit_code == 0
    messages = list((folder / "outbox").glob("*/*.eml"))
    assert len(messages) == 4
    assert {mode(m) for m in messages} == {0o600}
    assert mode(folder / "outbox") == 0o700 and mode(folder / "outbox" / TLS) == 0o700
    assert mode(folder / "newsletter.db") == 0o600
    # While the database is open SQLite keeps -wal and -shm beside it, with the database's mode.
    engine = engine_for(config_of(cli))
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM campaigns")
        side = [folder / "newsletter.db-wal", folder / "newsletter.db-shm"]
        assert all(p.exists() for p in side)
        assert {mode(p) for p in side} == {0o600}
    # A test send's folder too: the file names are addresses.
    assert cli("send-test", TLS, "--to", "me@example.org").exit_code == 0
    (test_folder,) = (folder / "outbox").glob("test-*")
    assert mode(test_folder) == 0o700 and {mode(p) for p in test_folder.iterdir()} == {0o600}


def test_render_output_is_private_and_an_existing_folder_keeps_its_mode(cli: Cli, folder: Path) -> None:
    assert cli("render", TLS).exit_code == 0
    build = folder / "build"
    assert mode(build) == 0o700
    assert {mode(p) for p in build.iterdir()} == {0o600} and len(list(build.iterdir())) == 3
    shared = folder / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    stale = shared / f"{TLS}.eml"
    stale.write_bytes(b"old")
    os.chmod(stale, 0o644)
    assert cli("render", TLS, "--out", "shared").exit_code == 0
    assert mode(shared) == 0o755  # the writer's own folder: left as it is
    assert mode(stale) == 0o600 and stale.read_bytes() != b"old"  # a message is personal data whatever was there


def test_exports_are_private_and_keep_the_mode_of_what_they_replace(cli: Cli, folder: Path) -> None:
    assert cli("subscribers", "export", "--out", "list.csv").exit_code == 0
    assert mode(folder / "list.csv") == 0o600
    os.chmod(folder / "list.csv", 0o640)  # shared with a group on purpose
    assert cli("subscribers", "export", "--out", "list.csv").exit_code == 0
    assert mode(folder / "list.csv") == 0o640
    assert "ada@example.com" in (folder / "list.csv").read_text()


def test_send_journals_are_private_even_over_a_stale_file(tmp_path: Path) -> None:
    fresh = Journal(tmp_path / "state.db.journal-1", lambda outcomes: None)
    assert mode(fresh.path) == 0o600
    fresh.abandon()
    stale = tmp_path / "state.db.journal-2"
    stale.write_bytes(b"")
    os.chmod(stale, 0o644)
    journal = Journal(stale, lambda outcomes: None)
    assert mode(stale) == 0o600
    journal.abandon()


def test_the_static_site_is_public(cli: Cli, folder: Path) -> None:
    cli.env["NEWSLETTER_NEWSLETTER_BASE_URL"] = "https://news.example.org"
    assert cli("site", "build").exit_code == 0
    site = folder / "site"
    assert mode(site / "index.html") == 0o644 and mode(site / "archive") == 0o755
