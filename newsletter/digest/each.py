"""`[schedule] mode = "each"`: at every run, the oldest article waiting goes out as its own issue.

Waiting = published (not a draft, dated by now), not scheduled (no send_at: those have their own
time) and never sent (no campaign). The run's article is frozen before its campaign starts (the
run's decision `sending`, with the article's slug as its key): a restart resumes that article
instead of choosing another, and the run becomes `sent` when the campaign finishes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence

from ..config import Config
from ..content.articles import Article, load_article
from ..content.issue import issue_for
from ..send.plan import EditChoice, check_sendable
from ..send.progress import Reporter
from ..state import campaigns, digests
from ..state.engine import engine_for
from ..state.statuses import RunDecision
from .clock import stored
from .outcome import Outcome, run_issue
from .plan import readable_articles
from .runs import Run

UTC = dt.UTC
log = logging.getLogger("newsletter.schedule")
Say = Callable[[str], None]


def waiting_articles(config: Config, now: dt.datetime, articles: Sequence[Article]) -> list[Article]:
    """The articles a run would send, oldest first (the first one goes at the next run)."""
    engine = engine_for(config)
    taken = campaigns.started_keys(engine) | {key for _, key in digests.runs_decided(engine, RunDecision.SENDING)}
    wall = now.astimezone(config.schedule.timezone).replace(tzinfo=None)
    ready = [a for a in articles if a.is_published(wall) and a.send_at is None and a.slug not in taken]
    return sorted(ready, key=lambda a: (a.date, a.slug))


async def _send_article(
    config: Config,
    run_time: dt.datetime,
    slug: str,
    stop: asyncio.Event | None,
    reporter: Reporter | None,
    on_edit: EditChoice,
) -> Outcome:
    article = load_article(config.path("issues") / f"{slug}.md")
    ran = await run_issue(config, issue_for(article), stop, reporter, on_edit)
    if ran is None:
        return Outcome(RunDecision.LOCKED, slug, "article")
    finished, sent = ran
    if not finished:
        return Outcome(RunDecision.STOPPED, slug, "article", recipients=sent)
    await asyncio.to_thread(digests.settle_run, engine_for(config), run_time, RunDecision.SENT)
    return Outcome(RunDecision.SENT, slug, "article", recipients=sent)


async def resume_each(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    on_edit: EditChoice = "remaining",
    say: Say = log.info,
) -> list[Outcome]:
    """Finish the articles of runs that were stopped or crashed. Call it holding the schedule lock."""
    outcomes = []
    for run_time, slug in digests.runs_decided(engine_for(config), RunDecision.SENDING):
        if stop is not None and stop.is_set():
            break
        say(f"resuming article {slug} (interrupted earlier)")
        outcome = await _send_article(config, stored(run_time, UTC), slug, stop, reporter, on_edit)
        say(outcome.message)
        outcomes.append(outcome)
    return outcomes


async def each_run(
    config: Config,
    now: dt.datetime,
    run: Run,
    *,
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    on_edit: EditChoice = "remaining",
    say: Say = log.info,
) -> Outcome:
    """The article of `run`, holding the schedule lock: the one frozen for it, else the oldest waiting."""
    engine = engine_for(config)
    if stop is not None and stop.is_set():
        return Outcome(RunDecision.STOPPED, "", "article")
    decided = digests.run_record(engine, run.time)
    if decided is not None:
        key, decision = decided
        if decision == RunDecision.SENDING:
            return await _send_article(config, run.time, key, stop, reporter, on_edit)
        return Outcome.settled(decision, key, "article")
    articles, skipped = readable_articles(config)
    for problem in skipped:
        say(f"warning: {problem}")
    waiting = waiting_articles(config, now, articles)
    if not waiting:
        await asyncio.to_thread(digests.record_run, engine, run.time, "", RunDecision.EMPTY)
        return Outcome(RunDecision.EMPTY, "", "article")
    article = waiting[0]
    check_sendable(config, issue_for(article))  # before freezing: a refusal leaves nothing behind
    await asyncio.to_thread(digests.record_run, engine, run.time, article.slug, RunDecision.SENDING)
    return await _send_article(config, run.time, article.slug, stop, reporter, on_edit)
