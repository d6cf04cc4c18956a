"""Articles with their own `send_at`: each goes out as its own issue at that moment.

The catch-up rules are the digest's: an article whose send_at came at most `catch_up` ago is sent
(so is one whose campaign already began: an interrupted send is always finished); one missed by
more than that is recorded as too old, said once, and left unsent (`newsletter send ISSUE` sends
it by hand). Decisions are kept per article and send_at, so a new send_at is a new send, while the
campaign store still sends each subscriber an article once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from apscheduler.triggers.base import BaseTrigger

from ..config import Config, format_duration
from ..content.articles import Article, article_paths, load_article
from ..content.issue import issue_for
from ..errors import ContentError
from ..send.plan import EditChoice
from ..send.progress import Reporter
from ..state import campaigns
from ..state.digests import naive_utc
from ..state.engine import engine_for
from ..state.scheduled import record_scheduled, scheduled_decisions
from ..state.statuses import RunDecision
from .clock import format_both, utc
from .outcome import Outcome, run_issue

RESCAN = dt.timedelta(seconds=60)  # how soon a new or edited send_at is noticed by a running scheduler


@dataclass(frozen=True)
class Scheduled:
    article: Article
    when: dt.datetime  # its send_at, in the schedule's zone

    @property
    def slug(self) -> str:
        return self.article.slug


def scheduled_articles(config: Config, articles: Sequence[Article]) -> list[Scheduled]:
    """Articles with a send_at (drafts are never sent), soonest first."""
    tz = config.schedule.timezone
    found = [Scheduled(a, when) for a in articles if not a.draft and (when := a.send_time(tz)) is not None]
    return sorted(found, key=lambda s: (s.when, s.slug))


def undecided(config: Config, articles: Sequence[Article]) -> list[Scheduled]:
    """Scheduled articles nothing was decided for yet (at their current send_at)."""
    decided = scheduled_decisions(engine_for(config))
    return [s for s in scheduled_articles(config, articles) if (s.slug, naive_utc(s.when)) not in decided]


def due_and_missed(
    config: Config, now: dt.datetime, articles: Sequence[Article]
) -> tuple[list[Scheduled], list[Scheduled]]:
    """(to send now, missed by more than catch_up) among the articles whose send_at has come."""
    started = campaigns.started_keys(engine_for(config))
    due, missed = [], []
    for item in undecided(config, articles):
        if utc(item.when) > utc(now):
            continue
        if utc(now) - utc(item.when) <= config.schedule.catch_up or item.slug in started:
            due.append(item)
        else:
            missed.append(item)
    return due, missed


async def send_scheduled(
    config: Config,
    item: Scheduled,
    *,
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    on_edit: EditChoice = "remaining",
) -> Outcome:
    """Send one scheduled article (holding the schedule lock) and record the decision."""
    engine = engine_for(config)
    if campaigns.is_finished(engine, item.slug):  # sent by hand before its time (send --ignore-send-at)
        record_scheduled(engine, item.slug, item.when, RunDecision.ALREADY_SENT)
        return Outcome(RunDecision.ALREADY_SENT, item.slug, "scheduled")
    ran = await run_issue(config, issue_for(item.article), stop, reporter, on_edit)
    if ran is None:
        return Outcome(RunDecision.LOCKED, item.slug, "scheduled")
    finished, sent = ran
    if not finished:
        return Outcome(RunDecision.STOPPED, item.slug, "scheduled", recipients=sent)
    record_scheduled(engine, item.slug, item.when, RunDecision.SENT)
    return Outcome(RunDecision.SENT, item.slug, "scheduled", recipients=sent)


def record_missed(config: Config, item: Scheduled, now: dt.datetime) -> Outcome:
    late = format_duration(utc(now) - utc(item.when))
    note = (
        f"missed its send_at ({format_both(item.when)}, {late} ago; catch_up is "
        f"{format_duration(config.schedule.catch_up)}): not sent; send it with `newsletter send {item.slug}`"
    )
    record_scheduled(engine_for(config), item.slug, item.when, RunDecision.TOO_OLD)
    return Outcome(RunDecision.TOO_OLD, item.slug, "scheduled", note=note)


class SendAtTimes(BaseTrigger):
    """APScheduler trigger: the next send_at of an undecided article, and at least every RESCAN, so an
    article written or rescheduled while the scheduler runs is sent on time.

    It runs in the scheduler's event loop, so files are parsed again only when they changed, and a
    failure (a missing folder, the database away) means "look again in a minute", never a stop.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self._seen: dict[Path, tuple[tuple[int, int], Article | None]] = {}

    def _articles(self) -> list[Article]:
        seen: dict[Path, tuple[tuple[int, int], Article | None]] = {}
        for path in article_paths(self.config.path("issues")):
            try:
                stat = path.stat()
            except OSError:
                continue
            stamp = (stat.st_mtime_ns, stat.st_size)
            known = self._seen.get(path)
            if known is None or known[0] != stamp:
                try:
                    known = (stamp, load_article(path))
                except ContentError:
                    known = (stamp, None)
            seen[path] = known
        self._seen = seen
        return [article for _stamp, article in seen.values() if article is not None]

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None, now: dt.datetime) -> dt.datetime | None:
        after = max(utc(now), utc(previous_fire_time)) if previous_fire_time is not None else utc(now)
        try:
            later = [utc(s.when) for s in undecided(self.config, self._articles()) if utc(s.when) > after]
        except Exception:  # the send-at job, a minute on, meets the same failure and logs it
            later = []
        return min([*later, after + RESCAN])

    def __str__(self) -> str:
        return "send_at of scheduled articles"
