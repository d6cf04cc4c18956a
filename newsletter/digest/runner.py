"""Sending a digest exactly once: freeze its articles, run its campaign, mark it sent.

Crash safety: the chosen articles are frozen (a pending record with its slugs) before the campaign
starts, and the record becomes sent when the campaign finishes. A crash in between leaves a pending
digest that the next run resumes with exactly those articles; pending articles are never offered to
another digest, so nothing is lost or sent twice. The digest lock lets one process work at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

from ..config import Config
from ..content.issue import Issue
from ..errors import AlreadySent, Locked, NewsletterError
from ..send.campaign import run_campaign
from ..send.plan import EditChoice
from ..send.progress import Reporter
from ..state import campaigns, deliveries, digests
from ..state.engine import engine_for
from ..state.lock import Lock
from ..state.statuses import RunDecision
from .clock import format_both
from .periods import digest_key, period
from .plan import DigestPlan, issue_for_digest, plan_digest, plan_from_record

LOCK_NAME = "digest"
log = logging.getLogger("newsletter.schedule")


@dataclass(frozen=True)
class DigestOutcome:
    status: RunDecision
    key: str
    recipients: int = 0
    articles: int = 0

    @property
    def message(self) -> str:
        period_ = self.key.removeprefix("digest-")
        if self.status == RunDecision.SENT:
            articles = f"{self.articles} article{'' if self.articles == 1 else 's'}"
            return f"sent digest {period_} to {self.recipients} subscribers ({articles})"
        if self.status == RunDecision.EMPTY:
            return "nothing new: skipped"
        if self.status == RunDecision.ALREADY_SENT:
            return f"digest {period_} was already sent: skipped"
        if self.status == RunDecision.LOCKED:
            return f"digest {period_}: another process is sending it: skipped"
        return f"digest {period_}: stopped before the end; the next start resumes it"


def freeze_plan(config: Config, plan: DigestPlan, run_time: dt.datetime | None) -> bool:
    """Record the plan's articles as this period's pending digest; False when the period has a record."""
    slugs = [a.slug for a in plan.articles]
    return digests.freeze(engine_for(config), plan.key, plan.since, plan.until, slugs, run_time)


async def _campaign(
    config: Config, issue: Issue, stop: asyncio.Event | None, reporter: Reporter | None, on_edit: EditChoice
) -> tuple[bool, int] | None:
    """run_campaign, reduced to (finished, subscribers who have it); None when locked.

    A digest already finished (a crash after the campaign, before `mark_sent`) counts as sent.
    """
    engine = engine_for(config)
    try:
        result = await run_campaign(config, issue, stop=stop, reporter=reporter, on_edit=on_edit)
    except AlreadySent:
        return True, deliveries.sent_count(engine, [c.id for c in campaigns.campaigns_for(engine, issue.key)])
    except Locked as exc:
        log.info("%s", exc)
        return None
    return result.finished, result.sent + result.already_sent


async def _send_plan(
    config: Config, plan: DigestPlan, stop: asyncio.Event | None, reporter: Reporter | None, on_edit: EditChoice
) -> DigestOutcome:
    issue = issue_for_digest(config, plan)
    ran = await _campaign(config, issue, stop, reporter, on_edit)
    if ran is None:
        return DigestOutcome(RunDecision.LOCKED, plan.key, 0, len(plan.articles))
    finished, sent = ran
    if not finished:
        return DigestOutcome(RunDecision.STOPPED, plan.key, sent, len(plan.articles))
    await asyncio.to_thread(digests.mark_sent, engine_for(config), plan.key, sent)
    return DigestOutcome(RunDecision.SENT, plan.key, sent, len(plan.articles))


async def resume_pending(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    on_edit: EditChoice = "remaining",
) -> list[DigestOutcome]:
    """Finish digests frozen by a run that was stopped or crashed (same articles, same campaign)."""
    outcomes = []
    for record in digests.pending_records(engine_for(config)):
        if stop is not None and stop.is_set():
            break
        log.info("resuming digest %s (interrupted earlier)", record.key.removeprefix("digest-"))
        outcome = await _send_plan(config, plan_from_record(config, record), stop, reporter, on_edit)
        log.info("%s", outcome.message)
        outcomes.append(outcome)
    return outcomes


async def send_digest(
    config: Config,
    now: dt.datetime,
    *,
    run_time: dt.datetime | None = None,
    since: dt.datetime | None = None,
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    wait_for_lock: bool = True,
    on_edit: EditChoice = "remaining",
) -> DigestOutcome:
    """Send the digest for `run_time`'s period (or `now`'s): the one entry point for scheduler and CLI.

    Under the state database's digest lock: finish interrupted digests, skip a period already
    sent, skip an empty digest when skip_if_empty, else freeze the articles and run the campaign.
    With `run_time`, the decision is recorded so the run is never repeated or re-logged.
    """
    engine = engine_for(config)
    tz = config.schedule.timezone
    now = now.astimezone(tz)
    key = digest_key((run_time or now).astimezone(tz))
    lock = Lock(engine, LOCK_NAME)
    if wait_for_lock:
        if not await lock.acquire(stop):
            return DigestOutcome(RunDecision.STOPPED, key)
    elif not await asyncio.to_thread(lock.try_acquire):
        return DigestOutcome(RunDecision.LOCKED, key)
    else:
        lock.keep_renewed()
    try:
        await resume_pending(config, stop=stop, reporter=reporter, on_edit=on_edit)
        if stop is not None and stop.is_set():
            return DigestOutcome(RunDecision.STOPPED, key)
        if digests.record_for(engine, key) is not None:
            outcome = DigestOutcome(RunDecision.ALREADY_SENT, key)
        else:
            plan = plan_digest(config, now, since=since, run_time=run_time)
            if not plan.articles and config.schedule.skip_if_empty:
                outcome = DigestOutcome(RunDecision.EMPTY, key)
            else:
                freeze_plan(config, plan, run_time)
                outcome = await _send_plan(config, plan, stop, reporter, on_edit)
        if run_time is not None and outcome.status != RunDecision.STOPPED:
            digests.record_run(engine, run_time, key, outcome.status)
        return outcome
    finally:
        await lock.aclose()


@dataclass
class DigestRunner:
    """The scheduler's job (scheduler.DigestJob): logs each decision in the words users read."""

    config: Config
    reporter: Reporter | None = None

    async def resume(self, now: dt.datetime, stop: asyncio.Event) -> None:
        engine = engine_for(self.config)
        if digests.pending_records(engine):
            lock = Lock(engine, LOCK_NAME)
            if await lock.acquire(stop):
                try:
                    await resume_pending(self.config, stop=stop, reporter=self.reporter)
                except NewsletterError as exc:
                    log.error("resuming the interrupted digest failed: %s", exc)
                finally:
                    await lock.aclose()

    async def run(self, run_time: dt.datetime, now: dt.datetime, stop: asyncio.Event) -> None:
        log.debug("run for %s", format_both(run_time))
        try:
            outcome = await send_digest(self.config, now, run_time=run_time, stop=stop, reporter=self.reporter)
        except NewsletterError as exc:
            log.error("digest %s failed: %s (it resumes on the next run or start)", period(run_time), exc)
            return
        log.info("%s", outcome.message)
