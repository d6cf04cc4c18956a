"""Which scheduled run a moment belongs to: the one decision `digest`, the preview, `send --digest`,
`send --due` and the scheduler share, so they always name the same digest.

A moment belongs to the latest run time at or before it while that run is owed (it came at most
`catch_up` ago and nothing settled it yet), else to the next run time. A run is settled by a
decision recorded for it (sent, empty, too old...), by its own digest having gone out, or by
another digest that already stands for it: one frozen at or after the run time (its window took
the run's articles), or the ISO-week digest release 0.1 sent in the run's week.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..config import Config
from ..state import digests
from ..state.engine import engine_for
from ..state.statuses import DigestStatus, RunDecision
from .cadence import Cadence, cadence_for
from .clock import utc
from .periods import digest_key, legacy_key, period_label


@dataclass(frozen=True)
class Run:
    """One scheduled run: when, the period it closes, its digest's campaign key, and whether it is owed now."""

    time: dt.datetime  # in the schedule's zone
    previous: dt.datetime | None  # the run before: the period is (previous, time]
    key: str  # its digest's campaign key, e.g. digest-2026-11-30
    label: str  # how a subject names the period: "week 49", "30 November 2026"
    due: bool  # its time came at most catch_up ago and nothing settled it yet

    @property
    def period(self) -> str:
        return self.key.removeprefix("digest-")


def run_at(config: Config, time: dt.datetime, *, due: bool = False, cadence: Cadence | None = None) -> Run:
    """The Run of a known run time."""
    cadence = cadence or cadence_for(config)
    time = time.astimezone(config.schedule.timezone)
    with_time = not cadence.once_a_day_at_most
    previous = cadence.previous(time)
    return Run(
        time, previous, digest_key(time, with_time=with_time), period_label(time, previous, with_time=with_time), due
    )


def settled(config: Config, run: Run) -> bool:
    """Nothing is owed for this run any more (see the module's docstring)."""
    engine = engine_for(config)
    decision = digests.run_decision(engine, run.time)
    if decision is not None:
        return decision != RunDecision.SENDING  # an article chosen, its campaign not done: still owed
    if config.schedule.mode != "digest":
        return False
    own = digests.record_for(engine, run.key)
    if own is not None:
        return own.status == DigestStatus.SENT
    return digests.covering_record(engine, run.time, run.key, legacy_key(run.time)) is not None


def run_for(config: Config, now: dt.datetime) -> Run | None:
    """The run `now` belongs to: the latest one while it is owed, else the next (None: no run ever again)."""
    cadence = cadence_for(config)
    now = now.astimezone(config.schedule.timezone)
    latest = cadence.last_at_or_before(now)
    if latest is not None and utc(now) - utc(latest) <= config.schedule.catch_up:
        run = run_at(config, latest, due=True, cadence=cadence)
        if not settled(config, run):
            return run
    upcoming = cadence.next_after(now)
    return run_at(config, upcoming, cadence=cadence) if upcoming is not None else None


def missed_run(config: Config, now: dt.datetime) -> Run | None:
    """The latest run, when it came more than catch_up ago and nothing settled it: too old to send now."""
    cadence = cadence_for(config)
    now = now.astimezone(config.schedule.timezone)
    latest = cadence.last_at_or_before(now)
    if latest is None or utc(now) - utc(latest) <= config.schedule.catch_up:
        return None
    run = run_at(config, latest, cadence=cadence)
    if digests.run_decision(engine_for(config), run.time) == RunDecision.SENDING:
        return None  # its article's campaign is resumed whatever the time (resume_each)
    return None if settled(config, run) else run


def due_run(config: Config, now: dt.datetime) -> Run | None:
    """The run owed at `now` (for `send --due`, `send --digest --if-due`), or None."""
    run = run_for(config, now)
    return run if run is not None and run.due else None
