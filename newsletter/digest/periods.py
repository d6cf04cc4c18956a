"""A digest's period and its campaign key, named after the ISO week of its run time."""

from __future__ import annotations

import datetime as dt


def period(moment: dt.datetime) -> str:
    """'2026-W48': the ISO week of a run time, in the schedule's zone."""
    iso = moment.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def digest_key(moment: dt.datetime) -> str:
    return f"digest-{period(moment)}"
