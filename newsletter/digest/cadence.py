"""When scheduled runs happen: the crontab, thinned by `[schedule] every` into at most one run per span.

`every = "2w"` with `cron = "0 9 * * mon"` is every other Monday: time is cut into windows of
`every` (wall-clock time, counted from `[schedule] start` at 00:00) and only the first crontab run
in each window is kept. Crontab alone cannot say "fortnightly": `*/14` in the day-of-month field
restarts every month (the 1st, 15th and 29th).
"""

from __future__ import annotations

import datetime as dt

from ..config import Config
from .cron import Crontab, RunTimes, crontab_for

UTC = dt.UTC
_TICK = dt.timedelta(microseconds=1)


class Cadence(RunTimes):
    """The run times of a schedule: a Crontab, and with `every` only the first run of each window."""

    def __init__(self, crontab: Crontab, every: dt.timedelta = dt.timedelta(0), start: dt.date | None = None) -> None:
        self.crontab = crontab
        self.tz = crontab.tz
        self.every = every
        self.anchor = dt.datetime.combine(start or dt.date(2001, 1, 1), dt.time())  # naive wall time

    @property
    def once_a_day_at_most(self) -> bool:
        """True when the crontab names one minute of one hour: a run's date alone names it."""
        cron = self.crontab.cron
        return cron.minute.isdigit() and cron.hour.isdigit()

    def _window_start(self, moment: dt.datetime) -> dt.datetime:
        """The naive wall time at which the `every` window holding `moment` begins."""
        wall = moment.astimezone(self.tz).replace(tzinfo=None)
        return self.anchor + ((wall - self.anchor) // self.every) * self.every

    def _first_from(self, wall: dt.datetime) -> dt.datetime | None:
        return self.crontab.next_after(wall.replace(tzinfo=self.tz), inclusive=True)

    def next_after(self, moment: dt.datetime, inclusive: bool = False) -> dt.datetime | None:
        """The first run time after `moment` (or at it, when inclusive)."""
        found = self.crontab.next_after(moment, inclusive)
        if found is None or not self.every:
            return found
        window = self._window_start(found)
        first = self._first_from(window)
        if first is not None and first.astimezone(UTC) == found.astimezone(UTC):
            return found
        return self._first_from(window + self.every)  # the window already had its run: the next one's first

    def last_at_or_before(self, moment: dt.datetime) -> dt.datetime | None:
        """The latest run time not after `moment`."""
        found = self.crontab.last_at_or_before(moment)
        if found is None or not self.every:
            return found
        return self._first_from(self._window_start(found))  # the first of its window: not after `found`

    def previous(self, run: dt.datetime) -> dt.datetime | None:
        """The run before `run`: a period runs from it (exclusive) to `run` (inclusive)."""
        return self.last_at_or_before(run - _TICK)

    def __str__(self) -> str:
        every = f" every {self.every}" if self.every else ""
        return f"{self.crontab}{every}"


def cadence_for(config: Config) -> Cadence:
    """The configured schedule's run times ([schedule] cron, every, start, timezone)."""
    section = config.schedule
    return Cadence(crontab_for(config), section.every, section.start)
