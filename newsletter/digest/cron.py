"""When the digest runs: a crontab in a time zone, with crontab's DST rules, on APScheduler 3.11's trigger.

The expression was checked and its day-of-week field turned into names when the config was loaded
(config/schedule.py: APScheduler 3.x reads day 0 as Monday). Here:

- a run time in the repeated hour of a DST change fires once (the first time), a run time in the
  skipped hour fires once, right after the gap;
- the trigger is injectable (`ShiftedTrigger`), so tests never wait minutes.
"""

from __future__ import annotations

import datetime as dt

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from ..config import Config, CronExpr
from ..errors import ConfigError

UTC = dt.UTC


def _is_ambiguous_second(moment: dt.datetime) -> bool:
    """The second occurrence of a wall time repeated when clocks go back (fold=1)."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def _normalize(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A real instant in `tz`: a wall time inside a DST gap becomes the instant right after the gap."""
    naive = moment.replace(tzinfo=None)
    if moment.fold == 1 and moment.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        moment = moment.replace(fold=0)
    return moment.astimezone(UTC).astimezone(tz)


class RunTimes(BaseTrigger):
    """A schedule of run times, from its `next_after`: listed ahead, or fired by APScheduler."""

    def next_after(self, moment: dt.datetime, inclusive: bool = False) -> dt.datetime | None:
        raise NotImplementedError

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

    # APScheduler's trigger interface
    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        if previous_fire_time is not None:
            return self.next_after(previous_fire_time)
        return self.next_after(now, inclusive=True)


class Crontab(RunTimes):
    """A 5-field crontab in a time zone, with crontab's meaning of days and DST rules applied.

    Both day fields restricted means either may match (classic cron), done with two APScheduler
    triggers; otherwise one.
    """

    def __init__(self, cron: CronExpr, tz: dt.tzinfo) -> None:
        self.cron = cron
        self.expr = cron.expr
        self.tz = tz
        c = cron
        if c.both_days:
            self._triggers = [
                CronTrigger(minute=c.minute, hour=c.hour, day=c.day, month=c.month, timezone=tz),
                CronTrigger(minute=c.minute, hour=c.hour, month=c.month, day_of_week=c.day_of_week, timezone=tz),
            ]
        else:
            self._triggers = [
                CronTrigger(
                    minute=c.minute, hour=c.hour, day=c.day, month=c.month, day_of_week=c.day_of_week, timezone=tz
                )
            ]

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


def crontab_for(config: Config) -> Crontab:
    """The configured schedule's trigger; a field APScheduler still refuses is a one-line error."""
    try:
        return Crontab(config.schedule.cron, config.schedule.timezone)
    except ValueError as exc:
        raise ConfigError(f"{config.where}: [schedule] cron: {config.schedule.cron.expr!r}: {exc}") from None
