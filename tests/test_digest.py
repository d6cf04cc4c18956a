"""The digest's content: window, drafts, future dates, articles already sent, skip-if-empty, crash safety.

Sends go to the real aiosmtpd server (tests/smtpd.py); the state is a real SQLite file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Config, load_config
from newsletter.digest.outcome import Outcome
from newsletter.digest.plan import issue_for_digest, next_digest, plan_digest
from newsletter.digest.runner import freeze_plan, send_digest
from newsletter.digest.runs import due_run, run_at
from newsletter.render.issue import render_issue
from newsletter.send.campaign import run_campaign
from newsletter.state.campaigns import campaigns_for
from newsletter.state.digests import record_for, run_decision
from newsletter.state.engine import engine_for
from newsletter.web.preview_render import Previewer

from .helpers import LINKS, SUBSCRIBERS, Cli, article, at, run_async, schedule_config, write_article
from .smtpd import SmtpServer

pytestmark = pytest.mark.usefixtures("database")
BASE = LINKS["NEWSLETTER_NEWSLETTER_BASE_URL"]


def send(config: Config, now: dt.datetime, **kwargs: Any) -> Outcome:
    return run_async(send_digest(config, now, **kwargs))


def test_window_takes_published_articles_once_in_date_order(letter: Path, smtp_server: SmtpServer) -> None:
    article(letter, "2026-11-10-too-old", "2026-11-10")  # before the first digest's 7-day look-back
    article(letter, "2026-11-20-second", "2026-11-20 18:00")
    article(letter, "2026-11-18-first", "2026-11-18")
    article(letter, "2026-11-21-draft", "2026-11-21", draft=True)
    article(letter, "2026-11-25-future", "2026-11-25")  # dated after the run
    config = schedule_config(letter, smtp_server)

    plan = plan_digest(config, at("2026-11-23T09:00"))
    assert plan.key == "digest-2026-11-23"
    assert [a.slug for a in plan.articles] == ["2026-11-18-first", "2026-11-20-second"]

    outcome = send(config, at("2026-11-23T09:00"))
    assert (outcome.status, outcome.key, outcome.recipients, outcome.articles) == ("sent", "digest-2026-11-23", 3, 2)
    assert outcome.message == "sent digest 2026-11-23 to 3 subscribers (2 articles)"
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)
    message = smtp_server.handler.received[0].message
    assert message["Subject"] == "Privacy Notes: week 48"
    text = message.get_body(("plain",)).get_content()
    assert text.index("First") < text.index("Second") and "Draft" not in text and "Future" not in text

    # The next week: the future article is published now; the earlier ones were in last week's digest.
    article(letter, "2026-11-19-backdated", "2026-11-19")  # written late, dated before last week's digest
    plan = plan_digest(config, at("2026-11-30T09:00"))
    assert plan.key == "digest-2026-11-30"
    assert plan.since == at("2026-11-23T09:00")
    assert [a.slug for a in plan.articles] == ["2026-11-25-future"]


def test_articles_already_in_a_digest_are_never_offered_again(letter: Path, smtp_server: SmtpServer) -> None:
    article(letter, "2026-11-20-a", "2026-11-20")
    config = schedule_config(letter, smtp_server)
    assert send(config, at("2026-11-23T09:00")).status == "sent"
    # Even a window reaching back over it (`newsletter digest --since`) leaves it out.
    plan = plan_digest(config, at("2026-11-30T09:00"), since=at("2026-11-01T00:00"))
    assert plan.articles == ()


def test_skip_if_empty_sends_nothing_and_keeps_the_window(letter: Path, smtp_server: SmtpServer) -> None:
    config = schedule_config(letter, smtp_server)
    outcome = send(config, at("2026-11-23T09:00"))
    assert (outcome.status, outcome.message) == ("empty", "nothing new: skipped")
    assert smtp_server.handler.received == []
    engine = engine_for(config)
    assert record_for(engine, "digest-2026-11-23") is None
    assert run_decision(engine, at("2026-11-23T09:00")) == "empty"
    assert next_digest(config, at("2026-11-23T09:00")) is None
    assert campaigns_for(engine) == []


def test_skip_if_empty_off_sends_an_empty_digest(letter: Path, smtp_server: SmtpServer) -> None:
    config = schedule_config(letter, smtp_server, skip_if_empty="false")
    outcome = send(config, at("2026-11-23T09:00"))
    assert (outcome.status, outcome.articles) == ("sent", 0)
    assert len(smtp_server.handler.received) == 3
    assert "0 new articles" in smtp_server.handler.received[0].message.get_body(("html",)).get_content()


def test_the_same_run_never_goes_out_twice(letter: Path, smtp_server: SmtpServer) -> None:
    article(letter, "2026-11-20-a", "2026-11-20")
    config = schedule_config(letter, smtp_server)
    assert send(config, at("2026-11-23T09:00")).status == "sent"
    article(letter, "2026-11-24-b", "2026-11-24")
    monday = run_at(config, at("2026-11-23T09:00"))
    again = send(config, at("2026-11-23T09:30"), run=monday)  # the same run, asked again: not twice
    assert (again.status, again.message) == ("already-sent", "digest 2026-11-23 was already sent: skipped")
    assert len(smtp_server.handler.received) == 3
    # On Thursday the moment belongs to next Monday's run: sent by hand now, it stands for that run.
    early = send(config, at("2026-11-26T12:00"))
    assert (early.status, early.key, early.articles) == ("sent", "digest-2026-11-30", 1)
    on_time = send(config, at("2026-11-30T09:00"), run=run_at(config, at("2026-11-30T09:00")))
    assert on_time.status == "already-sent"
    assert len(smtp_server.handler.received) == 6
    assert [c.key for c in campaigns_for(engine_for(config))] == ["digest-2026-11-30", "digest-2026-11-23"]


def test_crash_after_freezing_resumes_with_the_same_articles(letter: Path, smtp_server: SmtpServer) -> None:
    """Killed after the articles were chosen, before the campaign: the next run sends exactly those."""
    article(letter, "2026-11-20-a", "2026-11-20")
    config = schedule_config(letter, smtp_server)
    engine = engine_for(config)
    assert freeze_plan(config, plan_digest(config, at("2026-11-23T09:00")))  # ...and the process dies here
    article(letter, "2026-11-24-b", "2026-11-24")  # published while it was down

    outcome = send(config, at("2026-11-30T09:00"))  # the next week's run
    assert len(smtp_server.handler.received) == 6  # last week's resumed (3), then this week's (3)
    subjects = sorted({r.message["Subject"] for r in smtp_server.handler.received})
    assert subjects == ["Privacy Notes: week 48", "Privacy Notes: week 49"]
    assert record_for(engine, "digest-2026-11-23").slugs == ("2026-11-20-a",)  # type: ignore[union-attr]
    assert record_for(engine, "digest-2026-11-23").status == "sent"  # type: ignore[union-attr]
    assert (outcome.key, outcome.articles) == ("digest-2026-11-30", 1)
    assert record_for(engine, "digest-2026-11-30").slugs == ("2026-11-24-b",)  # type: ignore[union-attr]


def test_crash_after_the_campaign_before_recording_sends_nothing_again(letter: Path, smtp_server: SmtpServer) -> None:
    article(letter, "2026-11-20-a", "2026-11-20")
    config = schedule_config(letter, smtp_server)
    engine = engine_for(config)
    plan = plan_digest(config, at("2026-11-23T09:00"))
    freeze_plan(config, plan)
    result = run_async(run_campaign(config, issue_for_digest(config, plan)))
    assert result.finished  # ...and the process dies before marking the digest sent
    outcome = send(config, at("2026-11-23T09:05"))
    assert outcome.status == "already-sent"
    assert record_for(engine, "digest-2026-11-23").status == "sent"  # type: ignore[union-attr]
    assert len(smtp_server.handler.received) == 3


def test_interrupted_send_stays_pending_and_resumes(letter: Path, smtp_server: SmtpServer) -> None:
    article(letter, "2026-11-20-a", "2026-11-20")
    config = schedule_config(letter, smtp_server)
    stop = asyncio.Event()
    stop.set()  # SIGTERM arrived before the first message
    outcome = send(config, at("2026-11-23T09:00"), stop=stop)
    assert outcome.status == "stopped"
    assert smtp_server.handler.received == []
    outcome = send(config, at("2026-11-23T09:00"))
    assert outcome.status in {"sent", "already-sent"}
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)
    assert record_for(engine_for(config), "digest-2026-11-23").status == "sent"  # type: ignore[union-attr]


def test_digest_issue_renders_summaries_or_full_text(letter: Path) -> None:
    article(letter, "2026-11-20-a", "2026-11-20", title="Alpha")
    for content, present, absent in (("summary", "About 2026-11-20-a.", "The body of"), ("full", "The body of", "")):
        config = schedule_config(letter, content=content, subject="{{ newsletter.name }} #{{ week }} ({{ year }})")
        issue = next_digest(config, at("2026-11-23T09:00"))
        assert issue is not None
        assert (issue.kind, issue.key, issue.subject) == ("digest", "digest-2026-11-23", "Privacy Notes #48 (2026)")
        rendered = render_issue(issue, config)
        assert "Alpha" in rendered.html and present in rendered.text
        if absent:
            assert absent not in rendered.text


def test_subject_template_errors_name_the_key(letter: Path, cli: Cli) -> None:
    article(letter, "2026-11-20-a", "2026-11-20")
    cli.env["NEWSLETTER_SCHEDULE_SUBJECT"] = "{{ newsletter.nmae }}"
    result = cli("digest", "--now", "2026-11-23T09:00")
    assert result.exit_code == 2
    # The value came from the environment: the error names that variable, not the file.
    assert result.output.startswith("newsletter: error: environment variable NEWSLETTER_SCHEDULE_SUBJECT: ")


def test_due_run_for_cron(letter: Path, smtp_server: SmtpServer) -> None:
    article(letter, "2026-11-20-a", "2026-11-20")
    config = schedule_config(letter, smtp_server, catch_up="2h")

    def due(now: str) -> dt.datetime | None:
        run = due_run(config, at(now))
        return run.time if run is not None else None

    assert due("2026-11-23T08:59") is None  # this week's run has not come yet
    assert due("2026-11-23T09:00") == at("2026-11-23T09:00")
    assert due("2026-11-23T10:59") == at("2026-11-23T09:00")
    assert due("2026-11-23T11:01") is None  # beyond catch_up
    run = due_run(config, at("2026-11-23T09:30"))
    assert run is not None and run.key == "digest-2026-11-23"
    send(config, at("2026-11-23T09:30"), run=run)
    assert due("2026-11-23T10:00") is None  # sent: never twice


def test_digest_command_shows_the_next_digest(letter: Path, cli: Cli) -> None:
    article(letter, "2026-11-20-a", "2026-11-20", title="Alpha")
    article(letter, "2026-11-21-b", "2026-11-21", title="Beta", draft=True)
    result = cli("digest", "--now", "2026-11-26T12:00")
    assert result.exit_code == 0, result.output
    assert "next digest: digest-2026-11-30, at Mon 2026-11-30 09:00 CET (08:00 UTC)" in result.output
    assert "2026-11-20  Alpha" in result.output and "Beta" not in result.output
    assert "subject: Privacy Notes: week 49" in result.output
    early = cli("digest", "--now", "2026-11-26T12:00", "--since", "2026-11-21")
    assert "nothing new" in early.output
    bad = cli("digest", "--since", "last week")
    assert bad.exit_code == 2 and bad.output.startswith("newsletter: error: --since:")


def test_entries_link_to_their_web_page_and_the_text_part_numbers_only_its_links(
    letter: Path, smtp_server: SmtpServer
) -> None:
    write_article(
        letter,
        "2026-11-20-cut.md",
        "---\ntitle: Cut\ndate: 2026-11-20\nsummary: Sum.\n---\n\nTeaser with [a link](https://example.org/teaser)."
        "\n\n<!-- more -->\n\nThe [rest](https://example.org/rest).\n",
    )
    write_article(
        letter,
        "2026-11-21-own.md",
        "---\ntitle: Own excerpt\ndate: 2026-11-21\nexcerpt: The *front matter* excerpt, see [docs](https://example.org/docs)."
        "\n---\n\nA [body link](https://example.org/body).\n",
    )
    article(letter, "2026-11-22-plain", "2026-11-22")
    slugs = ["2026-11-20-cut", "2026-11-21-own", "2026-11-22-plain"]
    for content, linked in (
        ("summary", ["https://example.org/teaser", "https://example.org/docs"]),
        ("full", ["https://example.org/teaser", "https://example.org/rest", "https://example.org/body"]),
    ):
        issue = next_digest(schedule_config(letter, content=content), at("2026-11-23T09:00"))
        assert issue is not None
        rendered = render_issue(issue, schedule_config(letter, content=content))
        for slug in slugs:  # the title, and in summaries "Read more", link to the article's web page
            assert rendered.html.count(f'href="{BASE}/archive/{slug}"') == (2 if content == "summary" else 1)
        body, _, footer = rendered.text.partition("\nLinks:\n")
        listed = re.findall(r"^\[(\d+)\] (\S+)$", footer, re.M)
        assert [url for _, url in listed] == linked  # only links the text part shows, in the order it shows them
        assert [int(n) for n in re.findall(r"\[(\d+)\]", body)] == list(range(1, len(linked) + 1))
        if content == "summary":
            assert "Teaser with a link [1]" in body and "rest" not in rendered.html + body
            assert "front matter" in rendered.html and "body link" not in rendered.html
            assert "About 2026-11-22-plain." in body and f"Read more: {BASE}/archive/2026-11-20-cut" in body


def test_without_base_url_a_digest_is_refused_for_the_list_and_the_preview_says_why(
    letter: Path, cli: Cli, smtp_server: SmtpServer
) -> None:
    article(letter, "2026-11-20-a", "2026-11-20")
    cli.env.update({**smtp_server.env(), "NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv"})
    cli.env.pop("NEWSLETTER_NEWSLETTER_BASE_URL")  # the production-like set-up has one: not this test
    cli.env["NEWSLETTER_SCHEDULE_TIMEZONE"] = "Europe/Berlin"
    refused = cli("send", "--digest", "--yes", "--now", "2026-11-23T09:00")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("newsletter: error: digest entries have nothing to link to; set base_url")
    assert smtp_server.handler.received == []
    config = load_config(letter / "newsletter.toml", env=cli.env)
    assert record_for(engine_for(config), "digest-2026-11-23") is None  # nothing frozen: the run is still owed
    preview = Previewer(config).digest(at("2026-11-23T09:00"))
    assert preview is not None and any(w.startswith("digest entries have nothing to link to") for w in preview.warnings)
    cli.env.update(LINKS)
    sent = cli("send", "--digest", "--yes", "--now", "2026-11-23T09:30")
    assert "sent digest 2026-11-23 to 3 subscribers (1 article)" in sent.output
