"""`--now`: the clock commands read, the real one or one pretending a time (a testing aid).

Kept apart from the scheduler's commands so `send` does not load the scheduler to parse an option.
"""

from __future__ import annotations

import datetime as dt

from ..config import Config
from ..digest.clock import Clock
from ..errors import NewsletterError

NOW_HELP = "Pretend the time is TIME (YYYY-MM-DDTHH:MM, in [schedule] timezone unless it has an offset): a testing aid."


def parse_moment(text: str, option: str, tz: dt.tzinfo) -> dt.datetime:
    """YYYY-MM-DD or an ISO date-time; without an offset it is read in the schedule's zone."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise NewsletterError(f"{option}: {text!r} is not a date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


def make_clock(config: Config, now: str | None, now_at: float | None = None) -> Clock:
    """The real clock, or (--now) one that pretends a time and runs on from there."""
    tz = config.schedule.timezone
    if now is None:
        return Clock(tz)
    return Clock.pretending(tz, parse_moment(now, "--now", tz), now_at)
