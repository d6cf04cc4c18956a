"""Bounces through real servers and processes: Dovecot over IMAPS and STARTTLS, `bounces receive` as an
MTA's pipe runs it, and `newsletter schedule` reading a Maildir every interval; SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from newsletter.state.engine import engine_for
from newsletter.state.suppressions import reason_for

from .bouncemail import BOUNCES, deliver, fill, make_maildir, sent_by_recipient
from .dovecot import MISSING, Dovecot
from .helpers import FAST, TLS, Cli, config_of, write_list
from .smtpd import SmtpServer, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database")]


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    if MISSING:
        pytest.skip(MISSING)
    with Dovecot() as server:
        yield server


def _send(cli: Cli, folder: Path, server: SmtpServer, count: int) -> tuple[list[str], dict]:
    addresses = write_list(folder, count, cli)
    cli.env.update({**server.env(), **FAST, **BOUNCES})
    assert cli("send", TLS, "--yes").exit_code == 0
    return addresses, sent_by_recipient(server.handler.received)


def test_fetch_over_imaps_and_starttls_moves_each_message_once(
    cli: Cli, folder: Path, smtp_server: SmtpServer, dovecot: Dovecot
) -> None:
    addresses, sent = _send(cli, folder, smtp_server, 4)
    dovecot.deliver(
        fill("postfix-dsn.eml", sent[addresses[0]]),
        fill("yahoo-arf.eml", sent[addresses[1]]),
        fill("out-of-office.eml", sent[addresses[2]]),
        fill("forged-token.eml", sent[addresses[3]]),
        b"garbage\r\n",
    )
    cli.env.update(dovecot.env("tls"))
    # A real process, as cron or a shell runs it; the password only from the environment.
    result = cli.subprocess("bounces", "fetch")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"1: hard bounce 5.1.1 {addresses[0]}, {TLS}: suppressed as bounced",
        f"2: complaint (abuse) {addresses[1]}, {TLS}: suppressed as complained",
        "3: ignored: an automatic reply (Auto-Submitted: auto-replied)",
        "4: skipped: a forged or stale VERP token in bounces+1-1-aaaaaaaaaaaa@example.com: it names no message we sent",
        "5: skipped: not an email message (no header lines)",
        f"imaps://bounces@127.0.0.1:{dovecot.imaps_port}/INBOX: 5 messages: 2 counted, 1 ignored, 2 skipped; "
        "2 addresses suppressed",
    ]
    assert (dovecot.count("INBOX"), dovecot.count("Processed")) == (0, 5)
    again = cli("bounces", "fetch")
    assert again.exit_code == 0 and again.output.endswith(
        ": 0 messages: 0 counted, 0 ignored, 0 skipped; 0 addresses suppressed\n"
    )
    # STARTTLS on the plain port: the next bounce.
    cli.env.update(dovecot.env("starttls"))
    dovecot.deliver(fill("ses-bounce.eml", sent[addresses[3]]))
    later = cli("bounces", "fetch")
    assert later.exit_code == 0, later.output
    assert later.output.startswith(f"6: hard bounce 5.1.1 {addresses[3]}, {TLS}: suppressed as bounced\n")
    assert f"imap://bounces@127.0.0.1:{dovecot.imap_port}/INBOX: 1 message:" in later.output
    assert (dovecot.count("INBOX"), dovecot.count("Processed")) == (0, 6)
    engine = engine_for(config_of(cli))
    assert [reason_for(engine, a) for a in addresses] == ["bounced", "complained", None, "bounced"]
    # The next send skips the suppressed.
    smtp_server.handler.received.clear()
    assert cli("send", "2026-11-16-password-managers", "--yes").exit_code == 0
    assert smtp_server.handler.recipients() == [addresses[2]]


def test_imap_failures_are_one_line_and_leave_the_mailbox_alone(cli: Cli, dovecot: Dovecot) -> None:
    dovecot.deliver(fill("out-of-office.eml"))
    cli.env.update({**BOUNCES, **dovecot.env("tls")})

    def fails(message: str, **env: str) -> None:
        saved = dict(cli.env)
        cli.env.update(env)
        try:
            result = cli("bounces", "fetch")
        finally:
            cli.env.clear()
            cli.env.update(saved)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("newsletter: error: ") and result.stderr.count("\n") == 1
        assert message in result.stderr, result.stderr

    fails(
        "the IMAP server refused the login of bounces ([AUTHENTICATIONFAILED] Authentication failed.); check "
        "[bounces] imap_user and NEWSLETTER_BOUNCES_PASSWORD",
        NEWSLETTER_BOUNCES_PASSWORD="wrong",
    )
    fails("its TLS certificate is not trusted: self-signed certificate", SSL_CERT_FILE="/nonexistent.pem")
    fails("cannot open the IMAP folder 'Bounces'", NEWSLETTER_BOUNCES_IMAP_FOLDER="Bounces")
    fails("connection refused); check [bounces] imap_host", NEWSLETTER_BOUNCES_IMAP_PORT=str(free_port()))
    assert (dovecot.count("INBOX"), dovecot.count("Processed")) == (1, 0)


def test_receive_as_an_mta_pipe_runs_it(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    addresses, sent = _send(cli, folder, smtp_server, 2)
    first = sent[addresses[0]]
    message = fill("postfix-dsn.eml", first).decode()
    result = cli.subprocess("bounces", "receive", "--recipient", first.verp, input=message)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"stdin: hard bounce 5.1.1 {addresses[0]}, {TLS}: suppressed as bounced\n"
    # The state database unusable: EX_TEMPFAIL (75), so the MTA keeps the message and retries.
    cli.env["NEWSLETTER_PATHS_STATE"] = "newsletter.toml/cannot.db"
    broken = cli.subprocess("bounces", "receive", "--recipient", first.verp, input=message)
    assert broken.returncode == 75, broken.stderr
    assert broken.stderr.startswith("newsletter: error: ") and broken.stderr.count("\n") == 1
    assert "the MTA will retry" in broken.stderr and "Traceback" not in broken.stderr


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_the_scheduler_reads_the_bounce_mailbox_every_interval(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    addresses, sent = _send(cli, folder, smtp_server, 3)
    maildir = make_maildir(folder / "bounces")
    deliver(maildir, fill("postfix-dsn.eml", sent[addresses[0]]), "first")
    cli.env.update({"NEWSLETTER_BOUNCES_MAILDIR": "bounces", "NEWSLETTER_BOUNCES_INTERVAL": "1s"})
    log = folder / "schedule.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "schedule"],
            cwd=folder,
            env={**os.environ, **cli.env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert _wait_for(lambda: not list((maildir / "new").iterdir()), 60), log.read_text()
        deliver(maildir, fill("gmail-bounce.eml", sent[addresses[1]]), "second")  # the next interval takes it
        assert _wait_for(lambda: "soft bounce 4.2.2" in log.read_text(), 30), log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    text = log.read_text()
    assert code == 0, text
    assert "reading the bounce mailbox every 1s" in text
    assert "bounces: new/" in text and f"hard bounce 5.1.1 {addresses[0]}, {TLS}: suppressed as bounced" in text
    assert "bounces: maildir bounces: 1 message: 1 counted" in text
    assert "1 of 3 soft bounces within 30d" in text
    assert len(list((maildir / ".Processed" / "cur").iterdir())) == 2
