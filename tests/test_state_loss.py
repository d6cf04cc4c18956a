"""Losing the state database is visible: a send on a new or emptied database says what that means and asks.

A partial send to a real SMTP server, then the database is deleted (every table dropped on
PostgreSQL), truncated or damaged: the next `send --yes` refuses with one line (the record of
earlier sends kept beside the database says what was lost) and sends nothing; `db backup` makes a
copy that brings it all back. An edited article resumed after a partial send keeps the campaign's
Message-IDs, so a receiver drops the copy a crash may duplicate.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from newsletter.state.engine import dispose_all

from .helpers import FAST, TLS, Cli, config_of, counts, wait_for, wipe_state, write_list
from .smtpd import RecordingHandler, SlowHandler, SmtpServer

pytestmark = pytest.mark.usefixtures("database")


def partial_send(cli: Cli, handler: RecordingHandler, sent: int) -> None:
    """A send that stops (a 451 for everyone) once `sent` messages went out: the campaign is half done."""
    taken: list[str] = []

    def reply(address: str) -> str | None:
        if len(taken) >= sent:
            return "451 4.3.0 later"
        taken.append(address)
        return None

    handler.rcpt_reply = reply
    cli.env["NEWSLETTER_SMTP_MAX_ATTEMPTS"] = "1"
    cli("send", TLS, "--yes")
    handler.rcpt_reply = None
    assert len(handler.received) == sent and "sending" in cli("status", TLS).output


def test_a_deleted_database_after_a_partial_send_refuses_instead_of_sending_everyone_again(
    cli: Cli, folder: Path
) -> None:
    addresses = write_list(folder, 40, cli)
    handler = RecordingHandler()
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST})
        partial_send(cli, handler, 15)
        wipe_state(cli)
        result = cli("send", TLS, "--yes")
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.splitlines()
        assert "has no record of any send" in line and TLS in line and "--accept-new-state" in line
        assert "restore" in line and "newsletter db backup" in line
        assert len(handler.received) == 15  # nobody got a second copy
        asked = cli("send", TLS, input="n\n")
        assert asked.exit_code == 1 and "has no record of any send" in asked.output
        # The operator really starts over: the flag says so.
        over = cli("send", TLS, "--yes", "--accept-new-state")
        assert over.exit_code == 0, over.output + over.stderr
    assert Counter(handler.recipients())[addresses[0]] == 2  # what the flag means: everyone again


def test_a_truncated_database_file_is_a_lost_database_too(cli: Cli, folder: Path) -> None:
    if config_of(cli).state_is_url:
        pytest.skip("a PostgreSQL database is not a file")
    write_list(folder, 10, cli)
    assert cli("send", TLS, "--yes").exit_code == 0
    dispose_all()  # each command is a new process: none keeps the old file open
    (folder / "newsletter.db").write_bytes(b"")
    for suffix in ("-wal", "-shm"):
        (folder / f"newsletter.db{suffix}").unlink(missing_ok=True)
    result = cli("send", "2026-11-16-password-managers", "--yes")
    assert result.exit_code == 2 and "has no record of any send" in result.stderr


def test_the_very_first_send_of_a_new_newsletter_is_not_refused(cli: Cli) -> None:
    result = cli("send", "latest", "--yes")
    assert result.exit_code == 0, result.output + result.stderr


def test_a_damaged_database_is_one_line_with_how_to_restore(cli: Cli, folder: Path) -> None:
    if config_of(cli).state_is_url:
        pytest.skip("a PostgreSQL database is not a file")
    write_list(folder, 300, cli)
    assert cli("send", TLS, "--yes").exit_code == 0
    dispose_all()
    db = folder / "newsletter.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    with db.open("r+b") as fh:  # garbage over every page but the first
        fh.seek(4096)
        fh.write(os.urandom(size - 4096))
    result = cli("send", "2026-11-16-password-managers", "--yes")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("newsletter: error: newsletter.db: ") and "damaged" in line
    assert "restore it from a backup" in line and "Traceback" not in result.output


def test_db_backup_makes_a_copy_that_restores_everything(cli: Cli, folder: Path, tmp_path: Path) -> None:
    write_list(folder, 20, cli)
    assert cli("send", TLS, "--yes").exit_code == 0
    result = cli("db", "backup", str(tmp_path / "backup.db"))
    if config_of(cli).state_is_url:
        assert result.exit_code == 0 and "pg_dump --format=custom" in result.output
        assert "password" not in result.output
        return
    assert result.exit_code == 0, result.output + result.stderr
    backup = tmp_path / "backup.db"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert cli("db", "backup", "newsletter.db").exit_code == 2  # never over the database itself
    wipe_state(cli)
    shutil.copy(backup, folder / "newsletter.db")
    assert counts(cli) == {"sent": 20}
    again = cli("send", TLS, "--yes")
    assert again.exit_code == 2 and "already sent" in again.stderr


def test_an_edited_article_resumed_keeps_the_message_ids(cli: Cli, folder: Path) -> None:
    """Per campaign and recipient, not per version: a copy a crash duplicates can be dropped by the receiver."""
    from newsletter.state.engine import engine_for
    from newsletter.state.schema import deliveries

    addresses = write_list(folder, 30, cli)
    handler = RecordingHandler()
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST})
        partial_send(cli, handler, 10)
        # A kill right after the server took a message, before its outcome was written: the row stays pending.
        first = handler.received[0].rcpt_tos[0]
        engine = engine_for(config_of(cli))
        with engine.begin() as conn:
            conn.execute(deliveries.update().where(deliveries.c.email == first).values(status="pending"))
        article = folder / "issues" / f"{TLS}.md"
        article.write_text(article.read_text(encoding="utf-8") + "\nA correction.\n", encoding="utf-8")
        resumed = cli("send", TLS, "--yes")
        assert resumed.exit_code == 0, resumed.output + resumed.stderr
    copies = [r.message["Message-ID"] for r in handler.received if r.rcpt_tos == [first]]
    assert len(copies) == 2 and copies[0] == copies[1]
    assert Counter(handler.recipients()) == Counter([*addresses, first])


@pytest.mark.e2e
def test_an_article_edited_between_a_sigkill_and_the_resume_duplicates_only_dedupable_copies(
    cli: Cli, folder: Path
) -> None:
    addresses = write_list(folder, 150, cli)
    handler = SlowHandler()
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST, "NEWSLETTER_SMTP_CONNECTIONS": "3"})
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", TLS, "--yes"],
            cwd=folder,
            env={**os.environ, **cli.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_for(lambda: len(handler.received) >= 50 or proc.poll() is not None, 60)
        proc.kill()
        proc.wait(timeout=10)
        article = folder / "issues" / f"{TLS}.md"
        article.write_text(article.read_text(encoding="utf-8") + "\nA correction.\n", encoding="utf-8")
        handler.delay = 0.0
        resumed = cli.subprocess("send", TLS, "--yes")
        assert resumed.returncode == 0, resumed.stderr
    received = Counter(handler.recipients())
    assert set(received) == set(addresses)
    twice = [a for a, n in received.items() if n > 1]
    assert sum(received[a] - 1 for a in twice) <= 3
    for address in twice:  # the copy the kill duplicated carries the first one's Message-ID
        assert len({r.message["Message-ID"] for r in handler.received if r.rcpt_tos == [address]}) == 1
