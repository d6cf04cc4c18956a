"""Everything a schedule owes at a moment, sent once: what `newsletter send --due` and the scheduler do.

In order, holding the schedule lock: finish interrupted sends (a digest, a run's article), send the
scheduled articles whose send_at came, then settle the cadence's latest run (its digest, or in
mode "each" its article): sent when it came at most catch_up ago, recorded as too old otherwise.
Each step's errors are said and the next step still runs: one broken article stops nothing else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Config, format_duration
from ..content.articles import load_article
from ..content.issue import Issue, issue_for
from ..errors import NewsletterError
from ..send.plan import EditChoice
from ..send.progress import Reporter
from ..state import digests
from ..state.engine import engine_for
from ..state.statuses import RunDecision
from .cadence import cadence_for
from .clock import format_both, utc
from .each import each_run, resume_each, waiting_articles
from .feedpull import waits_for_feed
from .outcome import Outcome, count_articles, schedule_lock
from .plan import issue_for_digest, plan_digest, plan_from_record, readable_articles
from .runner import digest_run, resume_pending
from .runs import Run, missed_run, run_at, run_for
from .scheduled import due_and_missed, record_missed, send_scheduled

log = logging.getLogger("newsletter.schedule")
Say = Callable[[str], None]
DECISIONS = {RunDecision.SENT, RunDecision.EMPTY, RunDecision.ALREADY_SENT, RunDecision.TOO_OLD}


@dataclass
class Work:
    """One pass over what is owed: the options every step shares, and what came of each step."""

    config: Config
    stop: asyncio.Event | None = None
    reporter: Reporter | None = None
    on_edit: EditChoice = "remaining"
    say: Say = log.info
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    feed_error: str = ""  # the feed could not be read before this pass: a run that needs it may wait
    waiting: bool = False  # the run owed now waits for the feed

    @property
    def decisions(self) -> int:
        return sum(o.status in DECISIONS for o in self.outcomes)

    def _error(self, what: str, exc: NewsletterError) -> None:
        message = f"{what} failed: {exc} (it is tried again on the next run or start)"
        self.errors.append(message)
        self.say(f"error: {message}")

    def _add(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        self.say(outcome.message)

    async def resume(self) -> None:
        """Finish sends that an earlier process left half done."""
        for resume, what in (
            (resume_pending, "resuming the interrupted digest"),
            (resume_each, "resuming the article"),
        ):
            try:
                self.outcomes.extend(
                    await resume(
                        self.config, stop=self.stop, reporter=self.reporter, on_edit=self.on_edit, say=self.say
                    )
                )
            except NewsletterError as exc:
                self._error(what, exc)

    async def scheduled(self, now: dt.datetime) -> None:
        """Scheduled articles whose send_at came: sent, or recorded as missed."""
        articles, _broken = await asyncio.to_thread(readable_articles, self.config)
        due, missed = await asyncio.to_thread(due_and_missed, self.config, now, articles)
        for item in due:
            if self.stop is not None and self.stop.is_set():
                return
            self.say(f"sending scheduled article {item.slug} (send_at {format_both(item.when)})")
            try:
                self._add(await send_scheduled(self.config, item, stop=self.stop, reporter=self.reporter))
            except NewsletterError as exc:
                self._error(f"scheduled article {item.slug}", exc)
        for item in missed:
            self._add(await asyncio.to_thread(record_missed, self.config, item, now))

    async def run(self, now: dt.datetime, run: Run) -> None:
        """The cadence's run: its digest, or ([schedule] mode = "each") its article."""
        step = each_run if self.config.schedule.mode == "each" else digest_run
        try:
            self._add(
                await step(
                    self.config, now, run, stop=self.stop, reporter=self.reporter, on_edit=self.on_edit, say=self.say
                )
            )
        except NewsletterError as exc:
            self._error(f"the run at {format_both(run.time)}", exc)

    async def cadence(self, now: dt.datetime, *, tick: bool = False) -> None:
        """The latest run: sent while it is owed, recorded as too old after catch_up. On a tick the
        run just fired is reported even when another process or an earlier send settled it."""
        now = now.astimezone(self.config.schedule.timezone)
        run = run_for(self.config, now)
        if run is not None and run.due:
            if self.feed_error and waits_for_feed(self.config, now, run, self.say):
                self.waiting = True
                return
            late = utc(now) - utc(run.time)
            if late > dt.timedelta(minutes=1):
                self.say(f"missed the run at {format_both(run.time)}, catching up ({format_duration(late)} late)")
            await self.run(now, run)
            return
        missed = missed_run(self.config, now)
        if missed is not None:
            ago, allowed = format_duration(utc(now) - utc(missed.time)), format_duration(self.config.schedule.catch_up)
            note = (
                f"missed run too old: skipped (the run at {format_both(missed.time)} is {ago} late; "
                f"catch_up is {allowed})"
            )
            key = missed.key if self.config.schedule.mode == "digest" else ""
            await asyncio.to_thread(digests.record_run, engine_for(self.config), missed.time, key, RunDecision.TOO_OLD)
            self._add(Outcome(RunDecision.TOO_OLD, missed.key, note=note))
            return
        latest = cadence_for(self.config).last_at_or_before(now) if tick else None
        if latest is not None:  # settled already: the run says by whom (already sent, nothing new)
            await self.run(now, run_at(self.config, latest))


async def send_due(
    config: Config,
    now: dt.datetime,
    *,
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    on_edit: EditChoice = "remaining",
    say: Say = log.info,
    feed_error: str = "",
) -> Work:
    """Everything owed at `now`, in the module's order, holding the schedule lock (waits for it).

    `feed_error`: the feed pulled just before could not be read (a run that needs it may wait)."""
    work = Work(config, stop, reporter, on_edit, say, feed_error=feed_error)
    if feed_error:
        work.errors.append(f"feed: {feed_error}")
    async with schedule_lock(config, stop) as held:
        if not held:
            return work
        await work.resume()
        await work.scheduled(now)
        if stop is None or not stop.is_set():
            await work.cadence(now)
    return work


def owed(config: Config, now: dt.datetime, feed_error: str = "") -> list[tuple[str, Issue | None]]:
    """What `send_due` would do at `now`, described for a prompt or a dry run (it writes nothing);
    the Issue that would go out, or None for a due run that has nothing to send (or waits for the feed)."""
    engine = engine_for(config)
    found: list[tuple[str, Issue | None]] = []
    pending = digests.pending_records(engine)
    for record in pending:
        frozen = plan_from_record(config, record)
        found.append((f"digest {record.key} (interrupted earlier: resumed)", issue_for_digest(config, frozen)))
    folder = config.path("issues")
    for _run_time, slug in digests.runs_decided(engine, RunDecision.SENDING):
        found.append((f"article {slug} (interrupted earlier: resumed)", issue_for(load_article(folder / f"{slug}.md"))))
    articles, _broken = readable_articles(config)
    for item in due_and_missed(config, now, articles)[0]:
        found.append((f"scheduled article {item.slug} (send_at {format_both(item.when)})", issue_for(item.article)))
    run = run_for(config, now)
    if run is None or not run.due:
        return found
    when = f"the run at {format_both(run.time)}"
    if feed_error and waits_for_feed(config, now, run, lambda _line: None):
        found.append((f"{when}: waits for the feed", None))
        return found
    if config.schedule.mode == "each":
        if digests.run_record(engine, run.time) is None:
            waiting = waiting_articles(config, now, articles)
            if waiting:
                found.append((f"article {waiting[0].slug} ({when})", issue_for(waiting[0])))
            else:
                found.append((f"{when}: no article waiting to be sent: skipped", None))
    elif digests.record_for(engine, run.key) is None:
        plan = plan_digest(config, now, run)
        if plan.articles or not config.schedule.skip_if_empty:
            count = count_articles(len(plan.articles))
            found.append((f"digest {plan.key} ({count}, {when})", issue_for_digest(config, plan)))
        else:
            found.append((f"digest {run.key} ({when}): nothing new: skipped (skip_if_empty)", None))
    return found
