"""Scheduled articles (`send_at`), `[schedule] mode = "each"` and `send --due`: each send once, on time.

Through the real CLI (in-process, with `--now` pretending the time) against a real SQLite file (and
a real PostgreSQL where the state's new records are at stake), delivering to a real aiosmtpd server.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.content.articles import load_article
from newsletter.state.campaigns import campaigns_for
from newsletter.state.digests import record_run
from newsletter.state.engine import engine_for
from newsletter.state.statuses import RunDecision

from .helpers import LINKS, SUBSCRIBERS, Cli, article, at, config_of, write_article
from .smtpd import SmtpServer


@pytest.fixture
def due_cli(letter: Path, cli: Cli, smtp_server: SmtpServer) -> Cli:
    cli.env.update({**LINKS, **smtp_server.env(), "NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv"})
    cli.env["NEWSLETTER_SCHEDULE_TIMEZONE"] = "Europe/Berlin"
    return cli


def scheduled(folder: Path, slug: str, send_at: str, *, date: str = "2026-11-20", extra: str = "") -> None:
    text = f"---\ntitle: {slug.title()}\ndate: {date}\nsummary: S.\nsend_at: {send_at}\n{extra}---\n\nBody of {slug}.\n"
    write_article(folder, f"{slug}.md", text)


def subjects(server: SmtpServer) -> list[str]:
    return [r.message["Subject"] for r in server.handler.received]


# --- send_at ---------------------------------------------------------------------------------------


def test_send_at_is_a_wall_time_in_the_schedule_zone_or_carries_its_offset(letter: Path, cli: Cli) -> None:
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    scheduled(letter, "local", "2026-12-01 08:00")
    scheduled(letter, "offset", "2026-12-01T08:00-05:00")
    scheduled(letter, "gap", "2026-03-29 02:30")  # does not exist in Berlin: the instant after the gap
    scheduled(letter, "twice", "2026-10-25 02:30")  # happens twice in Berlin: the first
    when = {p.stem: load_article(p) for p in (letter / "issues").glob("*.md")}
    assert when["local"].send_time(berlin) == dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC)
    assert when["local"].send_time(new_york) == dt.datetime(2026, 12, 1, 13, tzinfo=dt.UTC)
    assert when["offset"].send_time(berlin) == dt.datetime(2026, 12, 1, 13, tzinfo=dt.UTC)
    assert f"{when['gap'].send_time(berlin):%H:%M %Z}" == "03:30 CEST"
    assert when["twice"].send_time(berlin).astimezone(dt.UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)  # type: ignore[union-attr]
    for bad, message in (("2026-12-01", "has no time of day"), ("soon", "is not a date and time")):
        scheduled(letter, "bad", bad)
        result = cli("render", "bad")
        assert result.exit_code == 2 and result.output.count("\n") == 1
        assert result.output.startswith(f"newsletter: error: issues/bad.md: send_at: '{bad}' {message}")


def test_send_asks_before_an_article_goes_out_ahead_of_its_send_at(due_cli: Cli, smtp_server: SmtpServer) -> None:
    scheduled(due_cli.folder, "launch", "2026-12-01 08:00")
    refused = due_cli("send", "launch", "--yes", "--now", "2026-11-28T10:00")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "launch.md: scheduled for Tue 2026-12-01 08:00 CET (07:00 UTC) (send_at)" in refused.stderr
    assert "add --ignore-send-at" in refused.stderr
    declined = due_cli("send", "launch", "--now", "2026-11-28T10:00", input="n\n")
    assert declined.exit_code == 1 and "send it now anyway? [y/N]" in declined.output
    assert smtp_server.handler.received == [] and campaigns_for(engine_for(config_of(due_cli))) == []
    early = due_cli("send", "launch", "--yes", "--ignore-send-at", "--now", "2026-11-28T10:00")
    assert early.exit_code == 0, early.output
    assert len(smtp_server.handler.received) == 3
    # At its time the scheduler finds it sent: nothing more goes out.
    on_time = due_cli("send", "--due", "--yes", "--now", "2026-12-01T08:00")
    assert "scheduled article launch was already sent: skipped" in on_time.output
    assert len(smtp_server.handler.received) == 3


@pytest.mark.usefixtures("database")  # the state this needs, on both databases
def test_send_due_sends_a_scheduled_article_once_at_its_time(due_cli: Cli, smtp_server: SmtpServer) -> None:
    scheduled(due_cli.folder, "launch", "2026-12-01 08:00")
    article(due_cli.folder, "2026-12-03-plain", "2026-12-03")
    before = due_cli("send", "--due", "--yes", "--now", "2026-12-01T07:59")
    assert before.exit_code == 0 and "nothing due now (next: scheduled launch at Tue 2026-12-01 08:00 CET" in before.output
    due = due_cli("send", "--due", "--yes", "--now", "2026-12-01T08:00:30")
    assert due.exit_code == 0, due.output
    assert "due: scheduled article launch (send_at Tue 2026-12-01 08:00 CET (07:00 UTC))" in due.output
    assert "sent scheduled article launch to 3 subscribers" in due.output
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)
    again = due_cli("send", "--due", "--yes", "--now", "2026-12-01T08:05")
    assert "nothing due now" in again.output and len(smtp_server.handler.received) == 3
    # The next digest holds the plain article, not the scheduled one (it went out as its own issue).
    digest = due_cli("send", "--due", "--yes", "--now", "2026-12-07T09:00")
    assert "sent digest 2026-12-07 to 3 subscribers (1 article)" in digest.output
    text = smtp_server.handler.received[-1].message.get_body(("plain",)).get_content()
    assert "Plain" in text and "Launch" not in text


@pytest.mark.usefixtures("database")  # the state this needs, on both databases
def test_a_missed_send_at_is_recorded_once_and_left_for_a_hand_send(due_cli: Cli, smtp_server: SmtpServer) -> None:
    due_cli.env["NEWSLETTER_SCHEDULE_CATCH_UP"] = "2h"
    scheduled(due_cli.folder, "launch", "2026-12-01 08:00")
    late = due_cli("send", "--due", "--yes", "--now", "2026-12-01T10:30")
    assert late.exit_code == 0, late.output
    assert (
        "scheduled article launch: missed its send_at (Tue 2026-12-01 08:00 CET (07:00 UTC), 2h30m ago; catch_up is "
        "2h): not sent; send it with `newsletter send launch`" in late.output
    )
    assert "missed its send_at" not in due_cli("send", "--due", "--yes", "--now", "2026-12-01T11:00").output
    assert smtp_server.handler.received == []
    by_hand = due_cli("send", "launch", "--yes", "--now", "2026-12-01T11:00")  # its time has passed: no question
    assert by_hand.exit_code == 0 and len(smtp_server.handler.received) == 3
    # A new send_at is a new decision; the campaign store still sends nobody the article twice.
    scheduled(due_cli.folder, "launch", "2026-12-02 08:00")
    again = due_cli("send", "--due", "--yes", "--now", "2026-12-02T08:00")
    assert "scheduled article launch was already sent: skipped" in again.output
    assert len(smtp_server.handler.received) == 3


# --- mode "each" -----------------------------------------------------------------------------------


def test_each_mode_sends_the_oldest_waiting_article_at_every_run_then_skips(due_cli: Cli, smtp_server: SmtpServer) -> None:
    folder = due_cli.folder
    due_cli.env.update({"NEWSLETTER_SCHEDULE_MODE": "each", "NEWSLETTER_SCHEDULE_CRON": "0 8 * * tue"})
    article(folder, "2026-11-18-second", "2026-11-18", title="Second")
    article(folder, "2026-11-10-first", "2026-11-10", title="First")
    article(folder, "2026-11-19-draft", "2026-11-19", draft=True)
    article(folder, "2026-11-20-by-hand", "2026-11-20")
    article(folder, "2026-11-25-third", "2026-11-25", title="Third")  # written after the first run
    article(folder, "2026-12-30-later", "2026-12-30")  # dated after every run here
    scheduled(folder, "own-time", "2027-02-01 08:00", date="2026-11-01")
    assert due_cli("send", "2026-11-20-by-hand", "--yes", "--now", "2026-11-21T12:00").exit_code == 0
    sent_by_hand = len(smtp_server.handler.received)

    listed = due_cli("schedule", "--next", "4", "--now", "2026-11-23T12:00").output.splitlines()
    assert [line.split("UTC   ", 1)[1] for line in listed] == [
        "article 2026-11-10-first: “First”",
        "article 2026-11-18-second: “Second”",
        "article 2026-11-25-third: “Third”",
        "article: none waiting yet: skipped",
    ]
    outputs = [due_cli("send", "--due", "--yes", "--now", f"{day}T08:01").output for day in ("2026-11-24", "2026-12-01", "2026-12-08", "2026-12-15")]
    assert "sent article 2026-11-10-first to 3 subscribers" in outputs[0]
    assert "sent article 2026-11-18-second to 3 subscribers" in outputs[1]
    assert "sent article 2026-11-25-third to 3 subscribers" in outputs[2]
    assert "no article waiting to be sent: skipped" in outputs[3]
    assert subjects(smtp_server)[sent_by_hand:] == ["First"] * 3 + ["Second"] * 3 + ["Third"] * 3
    assert "nothing due now" in due_cli("send", "--due", "--yes", "--now", "2026-12-15T09:00").output  # once a run
    assert "no digests" in due_cli("digest", "--now", "2026-12-15T09:00").output
    assert "use `newsletter send --due`" in due_cli("send", "--digest", "--now", "2026-12-15T09:00").stderr


@pytest.mark.usefixtures("database")  # the state this needs, on both databases
def test_each_mode_resumes_the_article_a_crashed_run_chose(due_cli: Cli, smtp_server: SmtpServer) -> None:
    due_cli.env.update({"NEWSLETTER_SCHEDULE_MODE": "each", "NEWSLETTER_SCHEDULE_CRON": "0 8 * * tue"})
    article(due_cli.folder, "2026-11-10-first", "2026-11-10", title="First")
    article(due_cli.folder, "2026-11-18-second", "2026-11-18", title="Second")
    # A run chose "second" (say, "first" was still a draft then) and the process died before sending.
    record_run(engine_for(config_of(due_cli)), at("2026-11-24T08:00"), "2026-11-18-second", RunDecision.SENDING)
    restarted = due_cli("send", "--due", "--yes", "--now", "2026-11-24T08:30")
    assert "due: article 2026-11-18-second (interrupted earlier: resumed)" in restarted.output
    assert "sent article 2026-11-18-second to 3 subscribers" in restarted.output
    assert "First" not in subjects(smtp_server)  # the run sent the article it had chosen, nothing more
    following = due_cli("send", "--due", "--yes", "--now", "2026-12-01T08:00")
    assert "sent article 2026-11-10-first" in following.output
    assert subjects(smtp_server) == ["Second"] * 3 + ["First"] * 3


# --- broken files --------------------------------------------------------------------------------


def test_a_broken_work_in_progress_file_is_left_out_with_one_line(due_cli: Cli, smtp_server: SmtpServer) -> None:
    folder = due_cli.folder
    article(folder, "2026-11-20-ready", "2026-11-20", title="Ready")
    write_article(folder, "2026-11-21-wip.md", "---\ntitle: [unfinished\ndate: 2026-11-21\n---\nDraft.\n")
    warning = "warning: issues/2026-11-21-wip.md:3: front matter is not valid YAML"
    shown = due_cli("digest", "--now", "2026-11-23T09:00")
    assert shown.exit_code == 0 and "Ready" in shown.output
    assert len(shown.stderr.splitlines()) == 1 and shown.stderr.startswith(warning)  # one line, naming the file
    sent = due_cli("send", "--due", "--yes", "--now", "2026-11-23T09:00")
    assert sent.exit_code == 0, sent.output
    assert warning in sent.output and "sent digest 2026-11-23 to 3 subscribers (1 article)" in sent.output
    assert subjects(smtp_server) == ["Privacy Notes: week 48"] * 3
    broken = due_cli("render", "2026-11-21-wip")  # the file itself still fails loudly
    assert broken.exit_code == 2 and broken.output.startswith("newsletter: error: ")
