"""`newsletter schedule`: APScheduler 3.11 in the foreground, two jobs with fixed ids.

- "cadence" fires at every run of `[schedule] cron` (thinned by `every`): the run's digest, or in
  mode "each" its article;
- "send-at" fires at the next `send_at` of a scheduled article, and every minute besides, so an
  article written or rescheduled while the scheduler runs goes out on time;
- with `[feed] url` set, the blog's feed is pulled at start and before every run ("cadence"), and
  every `[feed] interval` besides ("feed"); a run that waits for an unreadable feed is tried again
  FEED_RETRY later ("feed-retry").

What is owed is worked out from the state database (due.py), never from APScheduler's memory: at
start the scheduler does what `send --due` does (finish interrupted sends, catch up what came
within catch_up, record what is too old), and a fire that comes late is decided the same way
(`misfire_grace_time=None`, coalesced). Fixed job ids and `replace_existing=True`, so restarts never
pile jobs up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from ..bounces.scheduled import add_fetch_job
from ..config import Config, format_duration
from ..send.progress import Reporter
from ..state.engine import engine_for
from .cadence import Cadence, cadence_for
from .clock import Clock, format_both
from .cron import ShiftedTrigger
from .due import Work, send_due
from .feedpull import FEED_RETRY, pull_feed
from .outcome import schedule_lock
from .plan import readable_articles
from .scheduled import SendAtTimes, due_and_missed

CADENCE_JOB = "cadence"
SEND_AT_JOB = "send-at"
FEED_JOB = "feed"
FEED_RETRY_JOB = "feed-retry"
log = logging.getLogger("newsletter.schedule")


@dataclass
class Scheduler:
    """`newsletter schedule`: runs until SIGTERM/SIGINT; `max_runs` (tests) stops after that many decisions."""

    config: Config
    clock: Clock
    reporter: Reporter | None = None
    max_runs: int | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    decisions: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)  # this process's two jobs take turns
    feed_retry: dt.timedelta = FEED_RETRY  # a run waiting for an unreadable feed is tried again after this
    cadence: Cadence = field(init=False)
    _aps: AsyncIOScheduler | None = None

    def __post_init__(self) -> None:
        self.cadence = cadence_for(self.config)

    def next_run(self) -> dt.datetime | None:
        return self.cadence.next_after(self.clock.now())

    def _work(self) -> Work:
        return Work(self.config, self.stop, self.reporter, say=log.info)

    def _counted(self, work: Work) -> None:
        self.decisions += work.decisions
        if self.max_runs is not None and self.decisions >= self.max_runs:
            self.stop.set()

    async def _tracked(self, body: Callable[[], Awaitable[None]]) -> None:
        """A job's body, known to the signal handler (a stop then says the send will pause)."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await body()
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _locked(self, body: Callable[[Work], Awaitable[None]]) -> None:
        work = self._work()
        async with self._turn, schedule_lock(self.config, self.stop) as held:
            if held:
                await body(work)
        self._counted(work)

    async def _pull_feed(self) -> tuple[str, bool]:
        """The blog's feed, when `[feed] url` is set: (its error or "", whether it wrote posts that go out alone)."""
        if not self.config.feed.url:
            return "", False
        pulled = await pull_feed(self.config, log.info, now=self.clock.now())
        return pulled.error, bool(pulled.alone)

    def _retry_later(self) -> None:
        """The run waits for the feed: the cadence job once more, `feed_retry` from now."""
        if self._aps is None or self.stop.is_set():
            return
        self._aps.add_job(
            self._cadence_tick,
            trigger=DateTrigger(run_date=dt.datetime.now(dt.UTC) + self.feed_retry),
            id=FEED_RETRY_JOB,
            name="feed retry",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def _cadence_tick(self) -> None:
        """The "cadence" job: the feed first, then the run that just came, decided from the state database."""
        feed_error, alone = await self._pull_feed()

        async def body(work: Work) -> None:
            work.feed_error = feed_error
            await work.resume()
            if alone:  # posts the pull wrote in [feed] mode "each" go out now, not at the send-at job's minute
                await work.scheduled(self.clock.now())
            await work.cadence(self.clock.now(), tick=True)
            if work.waiting:
                self._retry_later()

        await self._tracked(lambda: self._locked(body))
        self._log_next()

    async def _feed_tick(self) -> None:
        """The "feed" job, every `[feed] interval`: posts pulled in mode "each" go out right away."""
        _error, alone = await self._pull_feed()
        if alone:
            await self._send_at_tick()

    async def _send_at_tick(self) -> None:
        """The "send-at" job: scheduled articles whose time came (quiet when there are none)."""
        now = self.clock.now()
        articles, _broken = await asyncio.to_thread(readable_articles, self.config)
        due, missed = await asyncio.to_thread(due_and_missed, self.config, now, articles)
        if not due and not missed:
            return

        async def body(work: Work) -> None:
            await work.scheduled(self.clock.now())

        await self._tracked(lambda: self._locked(body))

    def _log_next(self) -> None:
        if self.stop.is_set():
            return
        upcoming = self.next_run()
        log.info("next run at %s", format_both(upcoming) if upcoming else "never (the crontab has no future date)")

    def _on_error(self, event: JobExecutionEvent) -> None:
        log.error("scheduled work failed: %s", event.exception)

    def _triggers(self) -> tuple[BaseTrigger, BaseTrigger]:
        cadence: BaseTrigger = self.cadence
        send_at: BaseTrigger = SendAtTimes(self.config)
        if self.clock.offset:
            cadence, send_at = ShiftedTrigger(cadence, self.clock.offset), ShiftedTrigger(send_at, self.clock.offset)
        return cadence, send_at

    async def serve(self, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or `stop`); an in-flight send stops gracefully, resumable later."""
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(engine_for, self.config)
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._signalled, sig)
        scheduler = self._aps = AsyncIOScheduler(timezone=self.config.schedule.timezone, event_loop=loop)
        scheduler.add_listener(self._on_error, EVENT_JOB_ERROR)
        section = self.config.schedule
        every = f" every {format_duration(section.every)} from {section.start}" if section.every else ""
        log.info(
            "schedule %r%s in %s, mode %s, catch_up %s",
            self.cadence.crontab.expr,
            every,
            section.tz_name,
            section.mode,
            format_duration(section.catch_up),
        )
        try:

            async def startup() -> None:
                feed_error, _alone = await self._pull_feed()
                work = await send_due(
                    self.config, self.clock.now(), stop=self.stop, reporter=self.reporter, feed_error=feed_error
                )
                self._counted(work)
                if work.waiting:
                    self._retry_later()

            await self._tracked(startup)
            if not self.stop.is_set():
                cadence, send_at = self._triggers()
                jobs = (
                    (CADENCE_JOB, "cadence", self._cadence_tick, cadence),
                    (SEND_AT_JOB, "send_at", self._send_at_tick, send_at),
                )
                for job_id, name, func, trigger in jobs:
                    scheduler.add_job(
                        func,
                        trigger=trigger,
                        id=job_id,
                        name=name,
                        replace_existing=True,
                        coalesce=True,
                        max_instances=1,
                        misfire_grace_time=None,
                    )
                add_fetch_job(scheduler, self.config)  # the bounce mailbox, every [bounces] interval
                self._add_feed_job(scheduler)
                scheduler.start()
                self._log_next()
                await self.stop.wait()
        finally:
            # No new jobs, then let the running ones finish (the stop event pauses a send): APScheduler's
            # shutdown cancels running coroutine jobs, which could cut a lock's release short.
            if scheduler.running:
                scheduler.pause()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if scheduler.running:
                scheduler.shutdown(wait=False)
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        log.info("stopped")

    def _add_feed_job(self, scheduler: AsyncIOScheduler) -> None:
        feed = self.config.feed
        if not feed.url:
            return
        if feed.interval <= dt.timedelta(0):
            log.info("pulling %s before every run", feed.url)
            return
        scheduler.add_job(
            self._feed_tick,
            trigger=IntervalTrigger(seconds=feed.interval.total_seconds()),
            id=FEED_JOB,
            name="feed",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        log.info("pulling %s before every run and every %s", feed.url, format_duration(feed.interval))

    def _signalled(self, sig: int) -> None:
        pausing = " after the current send pauses" if self._tasks else ""
        log.info("%s received: stopping%s", signal.Signals(sig).name, pausing)
        self.stop.set()
