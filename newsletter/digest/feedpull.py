"""The feed, pulled by the schedule: before each run (its digest holds the blog's new posts), and every
`[feed] interval` besides (in `[feed] mode = "each"` a new post goes out on its own soon after).

A feed that cannot be read never stops the schedule: the error is said, and a run whose articles
depend on it waits for it (pulled again every FEED_RETRY by the scheduler, at every `send --due` by
cron) for at most half its catch_up; then it goes out with what the issues folder holds, so a cron
line that runs less often than that still finds the run owed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Config, format_duration
from ..errors import NewsletterError
from ..feed.fetch import source_for
from ..feed.pull import PullReport, pull
from ..state.engine import engine_for
from ..state.feeds import feed_record
from .clock import format_both, utc
from .runs import Run, run_for

FEED_RETRY = dt.timedelta(minutes=5)
Say = Callable[[str], None]


@dataclass
class FeedPull:
    """What a schedule's pull came to: its report, or the one-line error when the feed could not be read."""

    report: PullReport | None = None
    error: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def alone(self) -> list[str]:
        return self.report.alone if self.report is not None else []


def interval_passed(config: Config, now: dt.datetime) -> bool:
    """The last pull of `[feed] url` is older than `[feed] interval` (or there was none)."""
    if not config.feed.url or config.feed.interval <= dt.timedelta(0):
        return False
    record = feed_record(engine_for(config), source_for(config, None).name)
    if record is None:
        return True
    return utc(now) - record.last_pulled_at.replace(tzinfo=dt.UTC) >= config.feed.interval


def wanted(config: Config, now: dt.datetime) -> bool:
    """Whether `send --due` pulls now: a run is owed (pull right before it), or the interval has passed."""
    if not config.feed.url:
        return False
    run = run_for(config, now)
    return (run is not None and run.due) or interval_passed(config, now)


async def pull_feed(config: Config, say: Say, *, dry_run: bool = False, now: dt.datetime | None = None) -> FeedPull:
    """Pull `[feed] url` in a thread; each line said as `feed: ...`, an error said and returned, not raised."""
    result = FeedPull()

    def tell(line: str) -> None:
        result.lines.append(line)
        say(f"{'warning: ' if line.startswith('warning: ') else ''}feed: {line.removeprefix('warning: ')}")

    try:
        result.report = await asyncio.to_thread(pull, config, dry_run=dry_run, say=tell, now=now)
    except NewsletterError as exc:
        result.error = str(exc)
        say(f"error: feed: {exc}")
        return result
    say(f"feed: {result.report.summary().removeprefix('feed ')}")
    return result


def waits_for_feed(config: Config, now: dt.datetime, run: Run, say: Say) -> bool:
    """A run whose articles come from the feed waits while catch_up leaves room for another pull."""
    if config.feed.mode != "digest":
        return False  # in mode "each" the feed's posts go out alone: the run does not need them
    deadline = utc(run.time) + config.schedule.catch_up / 2
    if utc(now) >= deadline:
        say(f"the feed still cannot be read: the run at {format_both(run.time)} goes out without its new posts")
        return False
    say(
        f"the run at {format_both(run.time)} waits for the feed: pulled again in {format_duration(FEED_RETRY)}; "
        f"from {format_both(deadline.astimezone(run.time.tzinfo))} it goes out without the feed"
    )
    return True
