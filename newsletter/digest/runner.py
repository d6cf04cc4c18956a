"""Sending a run's digest exactly once: freeze its articles, run its campaign, mark it sent.

Crash safety: the chosen articles are frozen (a pending record with its slugs) before the campaign
starts, and the record becomes sent when the campaign finishes. A crash in between leaves a pending
digest that the next run resumes with exactly those articles; pending articles are never offered to
another digest, so nothing is lost or sent twice. The schedule lock lets one process work at a time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from ..config import Config
from ..send.plan import EditChoice, check_sendable
from ..send.progress import Reporter
from ..state import digests
from ..state.engine import engine_for
from ..state.statuses import RunDecision
from .clock import stored, utc
from .outcome import Outcome, run_issue, schedule_lock
from .plan import DigestPlan, issue_for_digest, plan_digest, plan_from_record
from .runs import Run, run_at, run_for, settled

log = logging.getLogger("newsletter.schedule")
Say = Callable[[str], None]


def freeze_plan(config: Config, plan: DigestPlan) -> bool:
    """Record the plan's articles as its run's pending digest; False when that digest has a record."""
    slugs = [a.slug for a in plan.articles]
    run_time = plan.run.time if plan.run is not None else None
    return digests.freeze(engine_for(config), plan.key, plan.since, plan.until, slugs, run_time)


async def _send_plan(
    config: Config, plan: DigestPlan, stop: asyncio.Event | None, reporter: Reporter | None, on_edit: EditChoice
) -> Outcome:
    ran = await run_issue(config, issue_for_digest(config, plan), stop, reporter, on_edit)
    if ran is None:
        return Outcome(RunDecision.LOCKED, plan.key, articles=len(plan.articles))
    finished, sent = ran
    if not finished:
        return Outcome(RunDecision.STOPPED, plan.key, recipients=sent, articles=len(plan.articles))
    await asyncio.to_thread(digests.mark_sent, engine_for(config), plan.key, sent)
    return Outcome(RunDecision.SENT, plan.key, recipients=sent, articles=len(plan.articles))


async def resume_pending(
    config: Config,
    *,
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    on_edit: EditChoice = "remaining",
    say: Say = log.info,
) -> list[Outcome]:
    """Finish digests frozen by a run that was stopped or crashed (same articles, same campaign).

    Call it holding the schedule lock.
    """
    outcomes = []
    for record in digests.pending_records(engine_for(config)):
        if stop is not None and stop.is_set():
            break
        say(f"resuming digest {record.key.removeprefix('digest-')} (interrupted earlier)")
        outcome = await _send_plan(config, plan_from_record(config, record), stop, reporter, on_edit)
        if outcome.status == RunDecision.SENT and record.run_time is not None:  # that run is settled
            run_time = stored(record.run_time, dt.UTC)
            await asyncio.to_thread(digests.record_run, engine_for(config), run_time, record.key, RunDecision.SENT)
        say(outcome.message)
        outcomes.append(outcome)
    return outcomes


async def digest_run(
    config: Config,
    now: dt.datetime,
    run: Run,
    *,
    since: dt.datetime | None = None,
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    on_edit: EditChoice = "remaining",
    say: Say = log.info,
) -> Outcome:
    """The digest of `run`, holding the schedule lock: skip a run already settled, skip an empty digest
    when skip_if_empty, else check it can go to the list, freeze its articles and run its campaign.

    The decision is recorded for the run once its time has come (or when it went out ahead of it), so
    the scheduler neither repeats nor re-logs it.
    """
    engine = engine_for(config)
    if stop is not None and stop.is_set():
        return Outcome(RunDecision.STOPPED, run.key)
    if settled(config, run):
        return Outcome.settled(digests.run_decision(engine, run.time), run.key, "digest")
    if digests.record_for(engine, run.key) is not None:  # frozen and not finished: only resume_pending sends it
        return Outcome(RunDecision.STOPPED, run.key)
    plan = plan_digest(config, now, run, since=since)
    for problem in plan.skipped:
        say(f"warning: {problem}")
    if not plan.articles and config.schedule.skip_if_empty:
        outcome = Outcome(RunDecision.EMPTY, run.key)
    else:
        check_sendable(config, issue_for_digest(config, plan))  # before freezing: a refusal leaves nothing behind
        freeze_plan(config, plan)
        outcome = await _send_plan(config, plan, stop, reporter, on_edit)
    came = utc(run.time) <= utc(now)
    if outcome.status not in (RunDecision.STOPPED, RunDecision.LOCKED) and (came or outcome.status == RunDecision.SENT):
        await asyncio.to_thread(digests.record_run, engine, run.time, run.key, outcome.status)
    return outcome


async def send_digest(
    config: Config,
    now: dt.datetime,
    *,
    run: Run | None = None,
    since: dt.datetime | None = None,
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    wait_for_lock: bool = True,
    on_edit: EditChoice = "remaining",
    say: Say = log.info,
) -> Outcome:
    """Send the digest of `run` (by default the run `now` belongs to): `send --digest` and the scheduler.

    Under the schedule lock: finish interrupted digests first, then `digest_run`.
    """
    run = run or run_for(config, now) or run_at(config, now)
    async with schedule_lock(config, stop, wait=wait_for_lock) as held:
        if not held:
            return Outcome(RunDecision.STOPPED if wait_for_lock else RunDecision.LOCKED, run.key)
        await resume_pending(config, stop=stop, reporter=reporter, on_edit=on_edit, say=say)
        return await digest_run(config, now, run, since=since, stop=stop, reporter=reporter, on_edit=on_edit, say=say)
