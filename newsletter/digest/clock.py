"""The scheduler's notion of now: real time plus an offset (tests pretend a time), and how times are shown."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

UTC = dt.UTC


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


def utc(moment: dt.datetime) -> dt.datetime:
    """The instant in UTC. Python compares and subtracts aware times that share a zone by their wall
    clock, which is an hour off across a DST change: every comparison of run times goes through here."""
    return moment.astimezone(UTC)


def stored(naive_utc: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """A time as the state database keeps it (naive UTC), as an instant in `tz`."""
    return naive_utc.replace(tzinfo=UTC).astimezone(tz)


def format_both(moment: dt.datetime) -> str:
    """'Mon 2026-11-23 09:00 CET (08:00 UTC)', the form every log line uses."""
    utc = moment.astimezone(UTC)
    same_day = utc.date() == moment.date()
    return (
        f"{moment:%a %Y-%m-%d %H:%M %Z} ({utc:%H:%M} UTC)"
        if same_day
        else (f"{moment:%a %Y-%m-%d %H:%M %Z} ({utc:%Y-%m-%d %H:%M} UTC)")
    )
