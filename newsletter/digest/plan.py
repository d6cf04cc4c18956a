"""What a digest holds: the window since the previous digest, the published articles in it, its Issue.

A digest is a campaign like any other (send/campaign.py: resume, one message per subscriber); its
campaign key is its period (`digest-2026-W48`), so one period's digest cannot go out twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import Config
from ..content.articles import Article, load_article, load_articles
from ..content.issue import Issue
from ..errors import ContentError
from ..state import digests
from ..state.digests import DigestRecord
from ..state.engine import engine_for
from ..state.statuses import DigestStatus
from .cron import crontab_for
from .periods import digest_key

UTC = dt.UTC
log = logging.getLogger("newsletter.schedule")


def _aware(naive_utc: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    return naive_utc.replace(tzinfo=UTC).astimezone(tz)


@dataclass(frozen=True)
class DigestPlan:
    """What one digest holds: its period, its window and its articles (oldest first)."""

    key: str
    since: dt.datetime
    until: dt.datetime
    articles: tuple[Article, ...]
    pending: bool = False  # frozen by an earlier, interrupted run

    @property
    def period(self) -> str:
        return self.key.removeprefix("digest-")


def _local_naive(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Article dates are naive wall times; they are read in the schedule's zone."""
    return moment.astimezone(tz).replace(tzinfo=None)


def select_articles(
    articles: Sequence[Article], since: dt.datetime, until: dt.datetime, exclude: set[str], tz: dt.tzinfo
) -> list[Article]:
    """Published (not a draft, not dated after `until`), dated after `since`, not in an earlier digest.

    Oldest first, the order a reader meets them in the week.
    """
    lo, hi = _local_naive(since, tz), _local_naive(until, tz)
    chosen = [a for a in articles if a.is_published(hi) and a.date > lo and a.slug not in exclude]
    return sorted(chosen, key=lambda a: (a.date, a.slug))


def plan_digest(
    config: Config,
    now: dt.datetime,
    *,
    since: dt.datetime | None = None,
    run_time: dt.datetime | None = None,
) -> DigestPlan:
    """The digest that would go out at `now`: window since the previous digest (or `lookback`).

    `since` overrides the window's start (`newsletter digest --since`); `run_time` names the period
    (a caught-up Monday run sent on Tuesday still belongs to Monday's week).
    """
    tz = config.schedule.timezone
    engine = engine_for(config)
    now = now.astimezone(tz)
    key = digest_key((run_time or now).astimezone(tz))
    if since is None:
        previous = digests.last_until(engine)
        since = _aware(previous, tz) if previous else now - config.schedule.lookback
    elif since.tzinfo is None:
        since = since.replace(tzinfo=tz)
    chosen = select_articles(load_articles(config.path("issues")), since, now, digests.included_slugs(engine), tz)
    return DigestPlan(key=key, since=since.astimezone(tz), until=now, articles=tuple(chosen))


def plan_from_record(config: Config, record: DigestRecord) -> DigestPlan:
    """A frozen digest, reloaded with the same articles (their current text)."""
    folder = config.path("issues")
    tz = config.schedule.timezone
    articles = []
    for slug in record.slugs:
        try:
            articles.append(load_article(folder / f"{slug}.md"))
        except ContentError:
            log.warning("digest %s: article %s is gone; sending the rest", record.key, slug)
    return DigestPlan(
        key=record.key,
        since=_aware(record.since, tz),
        until=_aware(record.until, tz),
        articles=tuple(articles),
        pending=True,
    )


def render_subject(config: Config, plan: DigestPlan) -> str:
    """The `[schedule] subject` template with `newsletter`, `week` (48), `year`, `period`, `articles`."""
    week = int(plan.period.rsplit("W", 1)[1])
    year = int(plan.period.split("-", 1)[0])
    return config.schedule.subject.render(
        newsletter=config.newsletter, week=week, year=year, period=plan.period, articles=plan.articles
    )


def issue_for_digest(config: Config, plan: DigestPlan) -> Issue:
    """The campaign's Issue: key = period, rendered by templates/digest.html and digest.txt."""
    titles = " · ".join(a.title for a in plan.articles)
    week = int(plan.period.rsplit("W", 1)[1])
    return Issue(
        key=plan.key,
        kind="digest",
        subject=render_subject(config, plan),
        articles=plan.articles,
        title=f"{config.newsletter.name}: week {week}",
        summary=titles[:150],
        extra={"content": config.schedule.content},
    )


def next_digest(config: Config, now: dt.datetime, since: dt.datetime | None = None) -> Issue | None:
    """What `newsletter send --digest` would send at `now`: an interrupted digest first, else a new one.

    None when that period's digest was already sent, or when nothing is new and skip_if_empty is on.
    """
    engine = engine_for(config)
    for record in digests.pending_records(engine):
        return issue_for_digest(config, plan_from_record(config, record))
    plan = plan_digest(config, now, since=since)
    existing = digests.record_for(engine, plan.key)
    if existing is not None or (not plan.articles and config.schedule.skip_if_empty):
        return None
    return issue_for_digest(config, plan)


def due_run(config: Config, now: dt.datetime) -> dt.datetime | None:
    """For cron (`send --digest --if-due`): the latest scheduled run time that is owed at `now`.

    Owed = it has passed, at most `catch_up` ago, nothing was decided for it yet, and its period's
    digest has not been sent. Run this as often as you like: at most one digest per period.
    """
    now = now.astimezone(config.schedule.timezone)
    run_time = crontab_for(config).last_at_or_before(now)
    if run_time is None or now - run_time > config.schedule.catch_up:
        return None
    engine = engine_for(config)
    if digests.run_decision(engine, run_time) is not None:
        return None
    record = digests.record_for(engine, digest_key(run_time))
    if record is not None and record.status == DigestStatus.SENT:
        return None
    return run_time
