"""When the digest goes out: crontab cadence, time zone, catch-up, and the APScheduler 3.11 wiring.

What a digest holds and how it is sent lives in digest.py; this module only decides *when*, so the
scheduler, `newsletter send --digest --if-due` (cron) and the tests share one notion of time:

- crontab numbering (0 and 7 are Sunday), translated to names before APScheduler sees it (its 3.x
  `from_crontab` takes 0 as Monday);
- a run time in the repeated hour of a DST change fires once (the first time), a run time in the
  skipped hour fires once, right after the gap;
- the clock and the trigger are injectable (`Clock`, `ShiftedTrigger`), so tests never wait minutes;
- a lease lock in the state database, so two scheduler processes never work on a digest at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Column, DateTime, Engine, String, Table, select, update
from sqlalchemy.dialects.sqlite import insert

from .config import Config
from .db import engine_for, metadata, utcnow
from .errors import ConfigError

UTC = dt.UTC
JOB_ID = "weekly-digest"
log = logging.getLogger("newsletter.schedule")

_MACROS = {
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# Crontab numbering: 0 and 7 are Sunday. The names are the same strings APScheduler uses.
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FULL_DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_DURATION = re.compile(r"(\d+)\s*([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def _where(config: Config) -> str:
    return str(config.source) if config.source else "built-in defaults"


# --- durations -------------------------------------------------------------------------------


def parse_duration(text: str, key: str = "duration") -> dt.timedelta:
    """'12h', '30m', '2d', '1w', '1h30m' or '0' -> timedelta; anything else is a one-line error."""
    cleaned = text.strip().lower().replace(" ", "")
    if cleaned == "0":
        return dt.timedelta(0)
    if not cleaned or _DURATION.sub("", cleaned):
        raise ConfigError(f"{key}: {text!r} is not a duration; write it like 30m, 12h, 2d or 1w (or 0)")
    total = dt.timedelta(0)
    for amount, unit in _DURATION.findall(cleaned):
        total += dt.timedelta(**{_UNITS[unit]: int(amount)})
    return total


def format_duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0"


# --- crontab ---------------------------------------------------------------------------------


def _day_number(token: str, expr: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    for number, name in enumerate(_DAY_NAMES):
        if token in (name, _FULL_DAY_NAMES[number]):
            return number
    raise ValueError(f"day of week {token!r} in {expr!r}: use 0-7 (0 and 7 are Sunday) or sun, mon, ..., sat")


def translate_day_of_week(field: str) -> str:
    """A crontab day-of-week field (0/7 = Sunday, names, ranges, steps) -> APScheduler names.

    APScheduler 3.x numbers Monday as 0, so numbers never reach it: the field is expanded to the set
    of days it means and handed over as names ("sun,tue,thu").
    """
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"day of week step {step_text!r} in {field!r} is not a positive number")
            step = int(step_text)
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            lo, hi = base.split("-", 1)
            first, last = _day_number(lo, field), _day_number(hi, field)
            if last == 0 and (first > 0 or hi.strip() == "7"):  # "fri-sun", "5-7", "0-7": Sunday closes the week
                last = 7
            if last < first:
                raise ValueError(f"day of week range {base!r} in {field!r} runs backwards; write it like mon-fri")
        else:
            first = _day_number(base, field)
            last = 6 if step_text else first
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def _is_ambiguous_second(moment: dt.datetime) -> bool:
    """The second occurrence of a wall time repeated when clocks go back (fold=1)."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def _normalize(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A real instant in `tz`: a wall time inside a DST gap becomes the instant right after the gap."""
    naive = moment.replace(tzinfo=None)
    if moment.fold == 1 and moment.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        moment = moment.replace(fold=0)
    return moment.astimezone(UTC).astimezone(tz)


class Crontab(BaseTrigger):
    """A 5-field crontab in a time zone, with crontab's meaning of days and DST rules applied.

    Both day fields restricted means either may match (classic cron), done with two APScheduler
    triggers; otherwise one.
    """

    def __init__(self, expr: str, tz: dt.tzinfo) -> None:
        self.expr = expr.strip()
        self.tz = tz
        fields = _MACROS.get(self.expr.lower(), self.expr).split()
        if len(fields) != 5:
            raise ValueError(
                f"{self.expr!r} has {len(fields)} fields; a crontab has 5: minute hour day-of-month month day-of-week"
            )
        minute, hour, dom, month, dow = fields
        dow_names = translate_day_of_week(dow.lower())
        try:
            if not dom.startswith("*") and not dow.startswith("*"):
                self._triggers = [
                    CronTrigger(minute=minute, hour=hour, day=dom, month=month, timezone=tz),
                    CronTrigger(minute=minute, hour=hour, month=month, day_of_week=dow_names, timezone=tz),
                ]
            else:
                self._triggers = [
                    CronTrigger(minute=minute, hour=hour, day=dom, month=month, day_of_week=dow_names, timezone=tz)
                ]
        except ValueError as exc:
            raise ValueError(f"{self.expr!r}: {exc}") from None

    def _first_at_or_after(self, moment: dt.datetime) -> dt.datetime | None:
        found = [t.get_next_fire_time(None, moment.astimezone(self.tz)) for t in self._triggers]
        candidates = [f for f in found if f is not None]
        return min(candidates, key=lambda f: f.astimezone(UTC)) if candidates else None

    def next_after(self, moment: dt.datetime, inclusive: bool = False) -> dt.datetime | None:
        """The first run time after `moment` (or at it, when inclusive)."""
        cursor = moment.astimezone(UTC) + (dt.timedelta(0) if inclusive else dt.timedelta(microseconds=1))
        for _ in range(1000):
            found = self._first_at_or_after(cursor)
            if found is None:
                return None
            if _is_ambiguous_second(found):
                # Already fired at this wall time an hour ago; never twice.
                cursor = found.astimezone(UTC) + dt.timedelta(seconds=1)
                continue
            return _normalize(found, self.tz)
        return None  # pragma: no cover - only a pathological expression gets here

    def runs(self, after: dt.datetime, count: int) -> list[dt.datetime]:
        out: list[dt.datetime] = []
        cursor = after
        while len(out) < count:
            found = self.next_after(cursor)
            if found is None:
                break
            out.append(found)
            cursor = found
        return out

    def last_at_or_before(self, moment: dt.datetime) -> dt.datetime | None:
        """The latest run time not after `moment` (what a late start may still owe)."""
        for span in (dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(days=8), dt.timedelta(days=32),
                     dt.timedelta(days=367), dt.timedelta(days=1470)):  # fmt: skip
            found = self.next_after(moment - span, inclusive=True)
            if found is None or found > moment:
                continue
            while True:
                following = self.next_after(found)
                if following is None or following > moment:
                    return found
                found = following
        return None

    # APScheduler's trigger interface
    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        if previous_fire_time is not None:
            return self.next_after(previous_fire_time)
        return self.next_after(now, inclusive=True)

    def __str__(self) -> str:
        return f"crontab[{self.expr}, {self.tz}]"


class ShiftedTrigger(BaseTrigger):
    """Runs `inner` on a clock that is `offset` ahead of the real one (tests: "it is Monday 08:59:57").

    APScheduler keeps its real clock and real sleeps; only the fire times are translated.
    """

    def __init__(self, inner: BaseTrigger, offset: dt.timedelta) -> None:
        self.inner = inner
        self.offset = offset

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        fake_prev = previous_fire_time + self.offset if previous_fire_time else None
        fake = self.inner.get_next_fire_time(fake_prev, now + self.offset)
        return None if fake is None else (fake.astimezone(UTC) - self.offset).astimezone(now.tzinfo)

    def __str__(self) -> str:
        return f"{self.inner} shifted by {self.offset}"


# --- settings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSettings:
    """[schedule], parsed and validated: the crontab, the zone, and durations as timedeltas."""

    crontab: Crontab
    tz: dt.tzinfo
    catch_up: dt.timedelta
    lookback: dt.timedelta
    skip_if_empty: bool
    subject: str
    content: str

    @property
    def tz_name(self) -> str:
        return str(getattr(self.tz, "key", self.tz))


def local_zone() -> dt.tzinfo:
    """The machine's zone (tzlocal reads /etc/localtime and TZ)."""
    from tzlocal import get_localzone

    return get_localzone()


def schedule_settings(config: Config) -> ScheduleSettings:
    """Validate [schedule] once; every error is one line naming the key."""
    where = _where(config)
    section = config.schedule
    if section.timezone:
        try:
            tz: dt.tzinfo = ZoneInfo(section.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{where}: [schedule] timezone: {section.timezone!r} is not a known IANA time zone; "
                f'use a name like "Europe/Berlin" or "America/New_York"'
            ) from None
    else:
        tz = local_zone()
    try:
        crontab = Crontab(section.cron, tz)
    except ValueError as exc:
        raise ConfigError(f'{where}: [schedule] cron: {exc}; e.g. "0 9 * * mon" is Mondays at 09:00') from None
    catch_up = parse_duration(section.catch_up, f"{where}: [schedule] catch_up")
    lookback = parse_duration(section.lookback, f"{where}: [schedule] lookback")
    if lookback <= dt.timedelta(0):
        raise ConfigError(f"{where}: [schedule] lookback: must be more than 0, e.g. 7d")
    from jinja2 import Environment, StrictUndefined, TemplateError

    try:  # a typo fails now, at start, rather than at next Monday's run
        Environment(undefined=StrictUndefined).from_string(section.subject).render(
            newsletter=config.newsletter, week=48, year=2026, period="2026-W48", articles=()
        )
    except TemplateError as exc:
        raise ConfigError(
            f"{where}: [schedule] subject: {exc.message}; the template may use newsletter, week, year, period"
        ) from None
    return ScheduleSettings(
        crontab=crontab,
        tz=tz,
        catch_up=catch_up,
        lookback=lookback,
        skip_if_empty=section.skip_if_empty,
        subject=section.subject,
        content=section.content,
    )


# --- clock -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """Real time plus a fixed offset, in the schedule's zone. Offset 0 in production."""

    tz: dt.tzinfo
    offset: dt.timedelta = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return (dt.datetime.now(UTC) + self.offset).astimezone(self.tz)

    @classmethod
    def pretending(cls, tz: dt.tzinfo, fake_now: dt.datetime, at_epoch: float | None = None) -> Clock:
        """A clock that reads `fake_now` at real time `at_epoch` (default: now) and runs on from there."""
        real = dt.datetime.fromtimestamp(time.time() if at_epoch is None else at_epoch, UTC)
        if fake_now.tzinfo is None:
            fake_now = fake_now.replace(tzinfo=tz)
        return cls(tz, fake_now.astimezone(UTC) - real)


def format_local(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z")


def format_both(moment: dt.datetime) -> str:
    """'Mon 2026-11-23 09:00 CET (08:00 UTC)', the form every log line uses."""
    utc = moment.astimezone(UTC)
    same_day = utc.date() == moment.date()
    return (
        f"{moment:%a %Y-%m-%d %H:%M %Z} ({utc:%H:%M} UTC)"
        if same_day
        else (f"{moment:%a %Y-%m-%d %H:%M %Z} ({utc:%Y-%m-%d %H:%M} UTC)")
    )


# --- state: lock and decided runs --------------------------------------------------------------

schedule_locks = Table(
    "schedule_locks",
    metadata,
    Column("name", String, primary_key=True),
    Column("owner", String, nullable=False),
    Column("expires_at", DateTime, nullable=False),  # UTC
)

schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("run_time", DateTime, primary_key=True),  # UTC, the scheduled time (not when it ran)
    Column("digest_key", String, nullable=False),
    Column("decision", String, nullable=False),  # sent | empty | already-sent | too-old
    Column("decided_at", DateTime, nullable=False),
)


def record_run(engine: Engine, run_time: dt.datetime, digest_key: str, decision: str) -> None:
    """Remember what was decided for a scheduled run, so a restart neither repeats nor re-logs it."""
    naive = run_time.astimezone(UTC).replace(tzinfo=None)
    stmt = insert(schedule_runs).values(run_time=naive, digest_key=digest_key, decision=decision, decided_at=utcnow())
    with engine.begin() as conn:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["run_time"]))


def run_decision(engine: Engine, run_time: dt.datetime) -> str | None:
    naive = run_time.astimezone(UTC).replace(tzinfo=None)
    with engine.connect() as conn:
        return conn.execute(select(schedule_runs.c.decision).where(schedule_runs.c.run_time == naive)).scalar()


def lock_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLock:
    """A named lock row in the state database with an expiry, renewed while held.

    A process that dies holding it blocks the others for at most `lease`; SQLite's write lock makes
    the take-over atomic (INSERT ... ON CONFLICT DO UPDATE ... WHERE expired).
    """

    def __init__(self, engine: Engine, name: str, lease: dt.timedelta = dt.timedelta(seconds=60)) -> None:
        self.engine = engine
        self.name = name
        self.lease = lease
        self.owner = lock_owner_id()
        self._renewer: asyncio.Task[None] | None = None

    def try_acquire(self) -> bool:
        now = utcnow()
        stmt = insert(schedule_locks).values(name=self.name, owner=self.owner, expires_at=now + self.lease)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"owner": self.owner, "expires_at": now + self.lease},
            where=(schedule_locks.c.expires_at < now) | (schedule_locks.c.owner == self.owner),
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
            holder = conn.execute(select(schedule_locks.c.owner).where(schedule_locks.c.name == self.name)).scalar()
        return holder == self.owner

    def holder(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(schedule_locks.c.owner).where(schedule_locks.c.name == self.name)).scalar()

    def renew(self) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(schedule_locks)
                .where(schedule_locks.c.name == self.name, schedule_locks.c.owner == self.owner)
                .values(expires_at=utcnow() + self.lease)
            )
        return result.rowcount == 1

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                schedule_locks.delete().where(schedule_locks.c.name == self.name, schedule_locks.c.owner == self.owner)
            )

    async def acquire(self, stop: asyncio.Event | None = None, poll: float = 0.5) -> bool:
        """Wait for the lock (False when `stop` is set first); then keep it renewed until release."""
        waited = False
        while not self.try_acquire():
            if not waited:
                log.info("another process holds the %s lock (%s); waiting", self.name, self.holder())
                waited = True
            if stop is not None and stop.is_set():
                return False
            await asyncio.sleep(poll)
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop())
        return True

    async def _renew_loop(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            if not await asyncio.to_thread(self.renew):
                log.warning("lost the %s lock (held too long without renewal)", self.name)
                return

    async def __aenter__(self) -> LeaseLock:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None
        self.release()


# --- the scheduler ---------------------------------------------------------------------------


class DigestJob(Protocol):
    """What the scheduler calls (digest.DigestRunner): resume an interrupted digest, or run one."""

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
    settings: ScheduleSettings
    job: DigestJob
    clock: Clock
    max_runs: int | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    runs_done: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def engine(self) -> Engine:
        return engine_for(self.config)

    def next_run(self) -> dt.datetime | None:
        return self.settings.crontab.next_after(self.clock.now())

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
            run_time = self.settings.crontab.last_at_or_before(now) or now
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
        missed = self.settings.crontab.last_at_or_before(now)
        if missed is None or await asyncio.to_thread(run_decision, self.engine, missed) is not None:
            return
        late = now - missed
        if late <= self.settings.catch_up:
            log.info("missed the run at %s, catching up (%s late)", format_both(missed), format_duration(late))
            await self.job.run(missed, now, self.stop)
        else:
            log.info(
                "missed run too old: skipped (the run at %s is %s late; catch_up is %s)",
                format_both(missed),
                format_duration(late),
                format_duration(self.settings.catch_up),
            )
            from .digest import digest_key  # the period's name only; digest.py owns the rest

            await asyncio.to_thread(record_run, self.engine, missed, digest_key(missed), "too-old")
        await self._decided()

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            run_time = event.scheduled_run_time
            log.info(
                "missed run too old: skipped (the run at %s; catch_up is %s)",
                format_both(run_time.astimezone(self.settings.tz)),
                format_duration(self.settings.catch_up),
            )
        elif event.code == EVENT_JOB_ERROR:
            log.error("digest run failed: %s", event.exception)

    async def serve(self, install_signals: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or `stop`); an in-flight send stops gracefully, resumable later."""
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(engine_for, self.config)
        if install_signals:
            import signal

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._signalled, sig)
        scheduler = AsyncIOScheduler(timezone=self.settings.tz, event_loop=loop)
        trigger: BaseTrigger = self.settings.crontab
        if self.clock.offset:
            trigger = ShiftedTrigger(trigger, self.clock.offset)
        grace = max(int(self.settings.catch_up.total_seconds()), 1)
        scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        log.info(
            "schedule %r in %s, catch_up %s",
            self.settings.crontab.expr,
            self.settings.tz_name,
            format_duration(self.settings.catch_up),
        )
        try:
            startup = asyncio.current_task()
            if startup is not None:
                self._tasks.add(startup)  # so a signal now says the send will pause
            try:
                await self._startup()
            finally:
                self._tasks.discard(startup)  # type: ignore[arg-type]
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
                scheduler.start()
                self._log_next()
                await self.stop.wait()
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=False)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            if install_signals:
                import signal

                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        log.info("stopped")

    def _signalled(self, sig: int) -> None:
        import signal

        pausing = " after the current send pauses" if self._tasks else ""
        log.info("%s received: stopping%s", signal.Signals(sig).name, pausing)
        self.stop.set()
