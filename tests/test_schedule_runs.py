"""Real `newsletter schedule` processes over many runs: send_at on time across a DST change and a
restart, mode "each" over three runs, daily and monthly digests over several periods.

The clock is pretended (`--now`, `--now-at`): a run is seconds away, or came a few seconds ago when
a process starts (the start-up catch-up sends it). Messages go to a real aiosmtpd server; the state
is a real SQLite file or a real PostgreSQL database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsletter.state.campaigns import campaigns_for
from newsletter.state.engine import engine_for

from .helpers import LINKS, SUBSCRIBERS, Cli, article, config_of, wait_for, write_article
from .smtpd import SmtpServer

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("database")]


@pytest.fixture
def sched(letter: Path, cli: Cli, smtp_server: SmtpServer) -> Cli:
    cli.env.update({**LINKS, **smtp_server.env(), "NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv"})
    cli.env.update({"NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin", "NEWSLETTER_CONFIG": str(letter / "newsletter.toml")})
    return cli


def until_logged(cli: Cli, now: str, text: str, *, fire_in: float = 4.0, timeout: float = 40) -> str:
    """Start a scheduler whose clock reads `now` in `fire_in` seconds; SIGTERM it once `text` is logged."""
    log = cli.folder / f"scheduler-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "schedule", "--now", now, "--now-at", str(time.time() + fire_in)],
            cwd=cli.folder,
            env={**os.environ, **cli.env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: text in log.read_text(), timeout)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    output = log.read_text()
    print(output)  # shown when the test fails
    assert code == 0 and text in output and "Traceback" not in output, output
    return output


def restarted(cli: Cli, now: str) -> str:
    """A scheduler started at `now` that stops after its first decision (the start-up catch-up)."""
    result = cli.subprocess("schedule", "--now", now, "--max-runs", "1")
    print(result.stderr)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_send_at_fires_once_on_time_across_a_dst_change_and_a_restart(sched: Cli, smtp_server: SmtpServer) -> None:
    # 2026-03-29 in Berlin: at 02:00 CET the clocks jump to 03:00 CEST. The scheduler starts before
    # the jump; the article is due at the first minute after it.
    text = "---\ntitle: Spring\ndate: 2026-03-20\nsummary: S.\nsend_at: 2026-03-29 03:00\n---\n\nHello.\n"
    write_article(sched.folder, "spring.md", text)
    first = until_logged(sched, "2026-03-29T01:59:57", "sent scheduled article spring to 3 subscribers")
    assert re.search(r"2026-03-29 03:00:0\d CEST sending scheduled article spring \(send_at Sun 2026-03-29 03:00 CEST", first)
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)
    # Restarted half a minute later (within catch_up): decided already, nothing goes out again.
    second = until_logged(sched, "2026-03-29T03:00:30", "next run at", fire_in=0)
    assert "spring" not in second
    assert len(smtp_server.handler.received) == 3
    listed = sched("schedule", "--next", "3", "--now", "2026-03-29T03:01")
    assert "spring" not in listed.output


def test_each_mode_over_three_runs_sends_three_articles_in_order_then_skips(sched: Cli, smtp_server: SmtpServer) -> None:
    sched.env.update({"NEWSLETTER_SCHEDULE_MODE": "each", "NEWSLETTER_SCHEDULE_CRON": "0 9 * * *"})
    for slug, title in (("2026-11-22-c", "Gamma"), ("2026-11-20-a", "Alpha"), ("2026-11-21-b", "Beta")):
        article(sched.folder, slug, slug[:10], title=title)
    # The first run fires in a running scheduler; the next ones are caught up by restarts.
    first = until_logged(sched, "2026-11-30T08:59:57", "sent article 2026-11-20-a to 3 subscribers")
    assert re.search(r"2026-11-30 09:00:0\d CET sent article 2026-11-20-a", first)
    assert "sent article 2026-11-21-b to 3 subscribers" in restarted(sched, "2026-12-01T09:00:05")
    assert "sent article 2026-11-22-c to 3 subscribers" in restarted(sched, "2026-12-02T09:00:05")
    assert "no article waiting to be sent: skipped" in restarted(sched, "2026-12-03T09:00:05")
    assert [r.message["Subject"] for r in smtp_server.handler.received] == ["Alpha"] * 3 + ["Beta"] * 3 + ["Gamma"] * 3


@pytest.mark.parametrize(
    ("cron", "runs"),
    [
        ("0 9 * * *", ["2026-11-30", "2026-12-01", "2026-12-02"]),
        ("0 9 1 * *", ["2026-12-01", "2027-01-01", "2027-02-01"]),
    ],
    ids=["daily", "monthly"],
)
def test_daily_and_monthly_digests_one_per_run(sched: Cli, smtp_server: SmtpServer, cron: str, runs: list[str]) -> None:
    sched.env["NEWSLETTER_SCHEDULE_CRON"] = cron
    for run in runs:  # one article an hour before each run
        article(sched.folder, f"{run}-early", f"{run} 08:00")
    first = until_logged(sched, f"{runs[0]}T08:59:57", f"sent digest {runs[0]} to 3 subscribers (1 article)")
    assert re.search(rf"{runs[0]} 09:00:0\d CET sent digest {runs[0]}", first)
    for run in runs[1:]:
        assert f"sent digest {run} to 3 subscribers (1 article)" in restarted(sched, f"{run}T09:00:05")
    again = until_logged(sched, f"{runs[-1]}T09:00:30", "next run at", fire_in=0)  # the same run: nothing twice
    assert "sent digest" not in again
    engine = engine_for(config_of(sched))
    assert sorted(c.key for c in campaigns_for(engine)) == [f"digest-{run}" for run in runs]
    assert len(smtp_server.handler.received) == 3 * len(runs)
