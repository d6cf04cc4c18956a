"""`newsletter schedule`: APScheduler 3.11 in the foreground, one job with a fixed id.

Missed runs are worked out from the state database (what was decided for each run time), not from
APScheduler's memory; one job with a fixed id and `replace_existing=True`, so restarts never pile
jobs up; misfire grace equal to `catch_up` (APScheduler's default is one second).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from dataclasses import dataclass, field
from typing import Protocol

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine

from ..bounces.scheduled import add_fetch_job
from ..config import Config, format_duration
from ..state.digests import record_run, run_decision
from ..state.engine import engine_for
from ..state.statuses import RunDecision
from .clock import Clock, format_both
from .cron import Crontab, ShiftedTrigger, crontab_for
from .periods import digest_key

JOB_ID = "weekly-digest"
log = logging.getLogger("newsletter.schedule")


class DigestJob(Protocol):
    """What the scheduler calls (runner.DigestRunner): resume an interrupted digest, or run one."""

    async def resume(self, now: dt.datetime, stop: asyncio.Event) -> None: ...

    async def run(self, run_time: dt.datetime, now: dt.datetime, stop: asyncio.Event) -> None: ...


@dataclass
class DigestScheduler:
    """`newsletter schedule`: APScheduler 3.11 in the foreground, one job with a fixed id.

    At start it resumes an interrupted digest, then settles the latest run time it may have missed
    while down (within catch_up: run it now; older: log and skip). `max_runs` (tests) stops after
    that many run decisions.
    """

    config: Config
    job: DigestJob
    clock: Clock
    max_runs: int | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    runs_done: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    crontab: Crontab = field(init=False)

    def __post_init__(self) -> None:
        self.crontab = crontab_for(self.config)

    @property
    def engine(self) -> Engine:
        return engine_for(self.config)

    def next_run(self) -> dt.datetime | None:
        return self.crontab.next_after(self.clock.now())

    async def _decided(self) -> None:
        self.runs_done += 1
        if self.max_runs is not None and self.runs_done >= self.max_runs:
            self.stop.set()

    async def _tick(self) -> None:
        """The APScheduler job: which run time is this, and how late are we?"""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            now = self.clock.now()
            run_time = self.crontab.last_at_or_before(now) or now
            late = now - run_time
            if late > dt.timedelta(minutes=1):
                log.info("missed the run at %s, catching up (%s late)", format_both(run_time), format_duration(late))
            await self.job.run(run_time, now, self.stop)
            await self._decided()
            self._log_next()
        finally:
            if task is not None:
                self._tasks.discard(task)

    def _log_next(self) -> None:
        if self.stop.is_set():
            return
        upcoming = self.next_run()
        log.info("next run at %s", format_both(upcoming) if upcoming else "never (the crontab has no future date)")

    async def _startup(self) -> None:
        now = self.clock.now()
        await self.job.resume(now, self.stop)
        if self.stop.is_set():
            return
        missed = self.crontab.last_at_or_before(now)
        if missed is None or await asyncio.to_thread(run_decision, self.engine, missed) is not None:
            return
        late = now - missed
        if late <= self.config.schedule.catch_up:
            log.info("missed the run at %s, catching up (%s late)", format_both(missed), format_duration(late))
            await self.job.run(missed, now, self.stop)
        else:
            log.info(
                "missed run too old: skipped (the run at %s is %s late; catch_up is %s)",
                format_both(missed),
                format_duration(late),
                format_duration(self.config.schedule.catch_up),
            )
            await asyncio.to_thread(record_run, self.engine, missed, digest_key(missed), RunDecision.TOO_OLD)
        await self._decided()

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            run_time = event.scheduled_run_time
            log.info(
                "missed run too old: skipped (the run at %s; catch_up is %s)",
                format_both(run_time.astimezone(self.config.schedule.timezone)),
                format_duration(self.config.schedule.catch_up),
            )
        elif event.code == EVENT_JOB_ERROR:
            log.error("digest run failed: %s", event.exception)

    async def serve(self, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or `stop`); an in-flight send stops gracefully, resumable later."""
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(engine_for, self.config)
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._signalled, sig)
        scheduler = AsyncIOScheduler(timezone=self.config.schedule.timezone, event_loop=loop)
        trigger: BaseTrigger = self.crontab
        if self.clock.offset:
            trigger = ShiftedTrigger(trigger, self.clock.offset)
        grace = max(int(self.config.schedule.catch_up.total_seconds()), 1)
        scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        log.info(
            "schedule %r in %s, catch_up %s",
            self.crontab.expr,
            self.config.schedule.tz_name,
            format_duration(self.config.schedule.catch_up),
        )
        try:
            startup = asyncio.current_task()
            if startup is not None:
                self._tasks.add(startup)  # so a signal now says the send will pause
            try:
                await self._startup()
            finally:
                if startup is not None:
                    self._tasks.discard(startup)
            if not self.stop.is_set():
                scheduler.add_job(
                    self._tick,
                    trigger=trigger,
                    id=JOB_ID,
                    name="weekly digest",
                    replace_existing=True,
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=grace,
                )
                add_fetch_job(scheduler, self.config)  # the bounce mailbox, every [bounces] interval
                scheduler.start()
                self._log_next()
                await self.stop.wait()
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        log.info("stopped")

    def _signalled(self, sig: int) -> None:
        pausing = " after the current send pauses" if self._tasks else ""
        log.info("%s received: stopping%s", signal.Signals(sig).name, pausing)
        self.stop.set()
