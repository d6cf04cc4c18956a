"""A digest's name: its campaign key, derived from the run it belongs to, and its label in subjects.

`digest-2026-11-30` is the digest of the run on that date (in the schedule's zone); a schedule that
may run more than once a day adds the time (`digest-2026-11-30-0900`). Release 0.1 named digests
after the ISO week of the run (`digest-2026-W48`); those keys are still read (`legacy_key`), so a
week already sent under the old name never goes out again under the new one.
"""

from __future__ import annotations

import datetime as dt
import re

_LEGACY = re.compile(r"digest-(\d{4})-W(\d{2})")
_WEEK = (dt.timedelta(days=6), dt.timedelta(days=8))  # a weekly cadence, DST changes included


def digest_key(run: dt.datetime, *, with_time: bool = False) -> str:
    """'digest-2026-11-30' (or with the time, 'digest-2026-11-30-0900'), for a run in the schedule's zone."""
    return f"digest-{run:%Y-%m-%d-%H%M}" if with_time else f"digest-{run:%Y-%m-%d}"


def legacy_key(run: dt.datetime) -> str:
    """The key release 0.1 gave the digest of this run's ISO week: 'digest-2026-W48'."""
    iso = run.isocalendar()
    return f"digest-{iso.year}-W{iso.week:02d}"


def legacy_week(key: str) -> tuple[int, int] | None:
    """(year, week) of a release-0.1 key, None for any other."""
    found = _LEGACY.fullmatch(key)
    return (int(found.group(1)), int(found.group(2))) if found else None


def period_label(run: dt.datetime, previous: dt.datetime | None, *, with_time: bool = False) -> str:
    """How a subject names the period: 'week 48' for a weekly cadence, else the run's date."""
    if previous is not None and _WEEK[0] <= run - previous <= _WEEK[1]:
        return f"week {run.isocalendar().week}"
    day = f"{run.day} {run:%B %Y}"
    return f"{day}, {run:%H:%M}" if with_time else day
