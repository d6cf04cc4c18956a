"""The digest follows the blog: `send --due` and `newsletter schedule` pull `[feed] url` before each run,
and the digest that holds the pulled posts goes to a real aiosmtpd server.

The feeds come from a real HTTP server on 127.0.0.1 (tests/data/feeds); the clock is pretended
(`--now`, `--now-at`); the state is a real SQLite file or a real PostgreSQL database.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.state.engine import engine_for
from newsletter.web.site import SitePages

from .feedserver import FeedServer
from .helpers import DATA, LINKS, SUBSCRIBERS, Cli, article, config_of, wait_for
from .smtpd import SmtpServer

PASSKEYS_URL = "https://blog.example.org/2026/11/26/passkeys-one-year-later/"
DNS_URL = "https://blog.example.org/2026/11/24/dns-over-https/"
NEW_ITEM = """<item>
<title>Recovery codes, printed</title>
<link>https://blog.example.org/recovery-codes-printed/</link>
<pubDate>{date}</pubDate>
<guid isPermaLink="false">https://blog.example.org/?p=420</guid>
<content:encoded><![CDATA[<p>Paper still wins.</p>]]></content:encoded>
</item>
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[FeedServer]:
    root = tmp_path / "served"
    shutil.copytree(DATA / "feeds", root)
    with FeedServer(root) as server:
        yield server


@pytest.fixture
def blog(letter: Path, cli: Cli, smtp_server: SmtpServer, served: FeedServer) -> Cli:
    """A newsletter that follows the WordPress fixture: weekly digest on Mondays at 09:00 in Berlin."""
    cli.env.update({**LINKS, **smtp_server.env(), "NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv"})
    cli.env.update({"NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin", "NEWSLETTER_FEED_URL": served.url("wordpress.xml")})
    cli.env["NEWSLETTER_CONFIG"] = str(letter / "newsletter.toml")
    return cli


def grow(served: FeedServer, date: str) -> None:
    feed = served.root / "wordpress.xml"
    feed.write_text(feed.read_text().replace("<item>", NEW_ITEM.format(date=date) + "\t<item>", 1))


def subjects(server: SmtpServer) -> list[str]:
    return [str(r.message["Subject"]) for r in server.handler.received]


@pytest.mark.usefixtures("database")
def test_send_due_pulls_the_feed_then_sends_the_digest_of_the_new_posts(blog: Cli, smtp_server: SmtpServer) -> None:
    result = blog("send", "--due", "--yes", "--now", "2026-11-30T09:00")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "feed: wrote issues/2026-11-24-a-short-note-on-dns-over-https.md: “A short note on DNS over HTTPS” (2026-11-24 18:30)" in lines
    assert "due: digest digest-2026-11-30 (2 articles, the run at Mon 2026-11-30 09:00 CET (08:00 UTC))" in lines
    assert "sent digest 2026-11-30 to 3 subscribers (2 articles)" in lines
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)
    message = smtp_server.handler.received[0].message
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    # Each entry links to the post on the blog, where it lives.
    for url in (PASSKEYS_URL, DNS_URL):
        assert f'href="{url}"' in html
    assert html.count("Read on the blog →") == 2 and "Read more →" not in html
    assert f"Read on the blog: {PASSKEYS_URL}" in text
    assert html.index("A short note on DNS over HTTPS") < html.index("Passkeys, one year later")  # oldest first
    # The run is settled: the next pass pulls nothing new and sends nothing.
    again = blog("send", "--due", "--yes", "--now", "2026-11-30T09:10")
    assert "sent digest" not in again.output and len(smtp_server.handler.received) == 3


@pytest.mark.usefixtures("database")
def test_a_run_waits_for_an_unreadable_feed_then_goes_out_with_or_without_it(
    blog: Cli, letter: Path, smtp_server: SmtpServer, served: FeedServer
) -> None:
    served.failing.add("wordpress.xml")
    waiting = blog("send", "--due", "--yes", "--now", "2026-11-30T09:00")
    assert waiting.exit_code == 1, waiting.output  # cron mails it
    assert f"error: feed: {served.url('wordpress.xml')}: the server answered 503 Service Unavailable" in waiting.output
    assert (
        "the run at Mon 2026-11-30 09:00 CET (08:00 UTC) waits for the feed: pulled again in 5m; from "
        "Mon 2026-11-30 15:00 CET (14:00 UTC) it goes out without the feed"
    ) in waiting.output
    assert smtp_server.handler.received == []
    served.failing.clear()  # the blog is back five minutes later
    back = blog("send", "--due", "--yes", "--now", "2026-11-30T09:05")
    assert back.exit_code == 0, back.output
    assert "sent digest 2026-11-30 to 3 subscribers (2 articles)" in back.output
    # A week later the blog is down for good: the run waits half its catch_up (12h), then goes out
    # with what the issues folder holds.
    article(letter, "2026-12-03-ours", "2026-12-03 10:00", title="Our own note")
    served.failing.add("wordpress.xml")
    late = blog("send", "--due", "--yes", "--now", "2026-12-07T15:01")
    assert late.exit_code == 1, late.output
    assert "the feed still cannot be read: the run at Mon 2026-12-07 09:00 CET (08:00 UTC) goes out without its new posts" in late.output
    assert "sent digest 2026-12-07 to 3 subscribers (1 article)" in late.output
    # When it is back, a post dated inside that digest's window is written and named: no digest holds it.
    served.failing.clear()
    grow(served, "Sat, 05 Dec 2026 10:00:00 +0000")
    after = blog("send", "--due", "--yes", "--now", "2026-12-08T10:00")
    assert (
        "feed: note: issues/2026-12-05-recovery-codes-printed.md is dated 2026-12-05 11:00, inside a digest that "
        "already went out: no digest will hold it; send it with `newsletter send 2026-12-05-recovery-codes-printed` "
        "if it should go out"
    ) in after.output
    assert len(smtp_server.handler.received) == 6


@pytest.mark.usefixtures("database")
def test_feed_mode_each_sends_every_new_post_alone_but_not_the_blogs_past(
    blog: Cli, letter: Path, smtp_server: SmtpServer, served: FeedServer
) -> None:
    blog.env["NEWSLETTER_FEED_MODE"] = "each"
    first = blog("send", "--due", "--yes", "--now", "2026-11-27T12:00")  # no run due; the interval says pull
    assert first.exit_code == 0, first.output
    assert (
        "feed: wrote issues/2026-11-26-passkeys-one-year-later.md: “Passkeys, one year later” (2026-11-26 09:10); "
        "not mailed (on the blog before the feed was followed)"
    ) in first.output
    assert "nothing due now" in first.output and smtp_server.handler.received == []
    grow(served, "Sat, 28 Nov 2026 10:00:00 +0000")
    second = blog("send", "--due", "--yes", "--now", "2026-11-28T12:00")
    assert second.exit_code == 0, second.output
    assert (
        "feed: wrote issues/2026-11-28-recovery-codes-printed.md: “Recovery codes, printed” (2026-11-28 11:00); "
        "goes out on its own (send_at 2026-11-28 12:00)"
    ) in second.output
    assert "sent scheduled article 2026-11-28-recovery-codes-printed to 3 subscribers" in second.output
    assert subjects(smtp_server) == ["Recovery codes, printed"] * 3
    # Within the hour nothing is pulled again. The Monday digest holds only our own article: the blog's
    # posts went out alone, or were on the blog before it was followed (never mailed, on the web archive).
    quiet = blog("send", "--due", "--yes", "--now", "2026-11-28T12:30")
    assert "feed:" not in quiet.output and "missed its send_at" not in quiet.output
    article(letter, "2026-11-29-ours", "2026-11-29 10:00", title="Our own note")
    monday = blog("send", "--due", "--yes", "--now", "2026-11-30T09:00")
    assert "sent digest 2026-11-30 to 3 subscribers (1 article)" in monday.output, monday.output
    assert subjects(smtp_server)[3:] == ["Privacy Notes: week 49"] * 3
    config = config_of(blog)
    archive = SitePages(config, engine_for(config), static=False).archive()
    assert archive is not None and "Passkeys, one year later" in archive and "A short note on DNS" in archive


@pytest.mark.usefixtures("database")
def test_send_due_dry_run_pulls_nothing_into_the_folder(blog: Cli, letter: Path, smtp_server: SmtpServer) -> None:
    result = blog("send", "--due", "--dry-run", "--now", "2026-11-30T09:00")
    assert result.exit_code == 0, result.output
    assert "feed: would write issues/2026-11-26-passkeys-one-year-later.md" in result.output
    assert list((letter / "issues").glob("*.md")) == [] and smtp_server.handler.received == []


def _scheduler(cli: Cli, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = cli.folder / f"scheduler-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "schedule", *args],
            cwd=cli.folder,
            env={**os.environ, **cli.env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, log


def _stop(proc: subprocess.Popen[bytes], log: Path) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    output = log.read_text()
    print(output)  # shown when the test fails
    assert code == 0 and "Traceback" not in output, output
    return output


@pytest.mark.e2e
@pytest.mark.usefixtures("database")
def test_the_scheduler_pulls_right_before_the_run(blog: Cli, smtp_server: SmtpServer, served: FeedServer) -> None:
    """Started at 08:59:45: the start pulls two posts; one more is published at 08:59; the 09:00 run pulls it too."""
    proc, log = _scheduler(blog, "--now", "2026-11-30T08:59:45", "--now-at", str(time.time() + 1))
    try:
        assert wait_for(lambda: "next run at Mon 2026-11-30 09:00" in log.read_text(), 40), log.read_text()
        grow(served, "Mon, 30 Nov 2026 07:59:00 +0000")
        wait_for(lambda: "sent digest 2026-11-30" in log.read_text(), 60)
    finally:
        output = _stop(proc, log)
    assert "feed: wrote issues/2026-11-26-passkeys-one-year-later.md" in output
    assert output.index("feed: wrote issues/2026-11-30-recovery-codes-printed.md") < output.index("sent digest")
    assert "sent digest 2026-11-30 to 3 subscribers (3 articles)" in output
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)


@pytest.mark.e2e
@pytest.mark.usefixtures("database")
def test_the_scheduler_tries_an_unreadable_feed_again_before_the_run_goes_out(
    blog: Cli, smtp_server: SmtpServer, served: FeedServer
) -> None:
    served.failing.add("wordpress.xml")
    proc, log = _scheduler(blog, "--now", "2026-11-30T09:00:05", "--max-runs", "1", "--feed-retry", "2")
    try:
        assert wait_for(lambda: "waits for the feed" in log.read_text(), 40), log.read_text()
        served.failing.clear()
        proc.wait(timeout=60)  # --max-runs 1: it stops after the digest
    finally:
        output = _stop(proc, log)
    assert "503 Service Unavailable" in output
    assert output.index("waits for the feed") < output.index("feed: wrote issues/2026-11-26-passkeys")
    assert "sent digest 2026-11-30 to 3 subscribers (2 articles)" in output
    assert len(smtp_server.handler.received) == 3
