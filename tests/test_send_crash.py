"""Crash safety: a `newsletter send` process killed mid-campaign, then the same command again."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from .helpers import FAST, TLS, Cli, counts, write_list
from .smtpd import RecordingHandler, SlowHandler, SmtpServer

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database")]

CONNECTIONS = 3


def start_send(cli: Cli) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", TLS, "--yes"],
        cwd=cli.folder,
        env={**os.environ, **cli.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(handler: RecordingHandler, count: int, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(handler.recipients()) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the send did not get going"
        time.sleep(0.01)


def recorded_sent(cli: Cli) -> set[str]:
    """Addresses recorded as sent: in the state database, or in a journal a killed run left."""
    from sqlalchemy import select

    from newsletter.send.journal import read_journal
    from newsletter.state.engine import engine_for
    from newsletter.state.schema import deliveries

    from .helpers import config_of

    config = config_of(cli)
    engine = engine_for(config)
    d = deliveries.c
    with engine.connect() as conn:
        emails = dict(conn.execute(select(d.id, d.email)).all())
        sent = {emails[i] for i in conn.execute(select(d.id).where(d.status == "sent")).scalars()}
    journals = list(config.path("state").resolve().parent.glob("*.journal-*"))
    for path in journals:
        sent |= {emails[o.delivery_id] for o in read_journal(path) if o.status == "sent"}
    return sent


@pytest.mark.parametrize(
    ("subscribers", "kill_after"),
    [(150, 40), (300, 250)],
    ids=["before-the-first-fold", "after-a-fold"],  # outcomes only in the journal / in the database and journal
)
def test_sigkill_mid_campaign_then_rerun_covers_everyone_once(
    cli: Cli, folder: Path, subscribers: int, kill_after: int
) -> None:
    addresses = write_list(folder, subscribers, cli)
    handler = SlowHandler()
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST, "NEWSLETTER_SMTP_CONNECTIONS": str(CONNECTIONS)})
        proc = start_send(cli)
        wait_for(handler, kill_after, proc)
        proc.kill()  # SIGKILL: no cleanup at all
        proc.wait(timeout=10)
        before = len(handler.recipients())
        assert before < len(addresses), "killed too late to test anything"
        # Every accepted message but the last in flight on each connection is recorded: folded into
        # the database or still in the outcome journal the killed process left (replayed next run).
        recorded = recorded_sent(cli)
        unrecorded = set(handler.recipients()) - recorded
        assert len(unrecorded) <= CONNECTIONS, unrecorded
        assert not recorded - set(handler.recipients()), "recorded as sent but never accepted"
        handler.delay = 0.0
        rerun = cli.subprocess("send", TLS, "--yes")  # the lock of the dead process is taken over
        assert rerun.returncode == 0, rerun.stderr
    received = Counter(handler.recipients())
    assert set(received) == set(addresses)
    assert not list(folder.glob("*.journal-*")), "the rerun folds and removes the journal"
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= CONNECTIONS, received.most_common(5)
    assert counts(cli) == {"sent": subscribers}


def test_sigterm_stops_gracefully_records_everything_and_says_how_to_resume(cli: Cli, folder: Path) -> None:
    addresses = write_list(folder, 150, cli)
    handler = SlowHandler()
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST, "NEWSLETTER_SMTP_CONNECTIONS": str(CONNECTIONS)})
        proc = start_send(cli)
        wait_for(handler, 30, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert f"run `newsletter send {TLS}` again to resume" in err
        got = Counter(handler.recipients())
        assert sum(got.values()) < len(addresses)
        # Every accepted message was recorded: in-flight ones finished, nothing new started.
        assert counts(cli).get("sent", 0) == sum(got.values())
        assert f"sent {sum(got.values())}," in out
        handler.delay = 0.0
        rerun = cli.subprocess("send", TLS, "--yes")
        assert rerun.returncode == 0, rerun.stderr
        assert f"({sum(got.values())} were sent by earlier runs" in rerun.stdout
    assert Counter(handler.recipients()) == Counter(addresses)  # graceful: no duplicate at all


def test_sigkill_on_one_machine_then_resume_on_another(cli: Cli, folder: Path, tmp_path: Path, database: str) -> None:
    """PostgreSQL, shared by two machines: the first is killed and lost with everything on it.

    The outcomes reached the database before each connection's next message (group commits), so
    the second machine, resuming from the database alone, sends nobody more than one extra copy per
    connection.
    """
    if "://" not in database:
        pytest.skip("a SQLite file belongs to one machine")
    addresses = write_list(folder, 200, cli)
    other = tmp_path / "other-machine"
    shutil.copytree(folder, other)  # the same newsletter folder, checked out on a second machine
    handler = SlowHandler()
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST, "NEWSLETTER_SMTP_CONNECTIONS": str(CONNECTIONS)})
        proc = start_send(cli)
        wait_for(handler, 60, proc)
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(folder)  # the first machine is gone, with anything it kept locally
        recorded = recorded_sent(Cli(other, cli.env))
        assert len(set(handler.recipients()) - recorded) <= CONNECTIONS
        handler.delay = 0.0
        resumed = Cli(other, cli.env).subprocess("send", TLS, "--yes")
        assert resumed.returncode == 0, resumed.stderr
    received = Counter(handler.recipients())
    assert set(received) == set(addresses)
    assert sum(n - 1 for n in received.values()) <= CONNECTIONS, received.most_common(5)
