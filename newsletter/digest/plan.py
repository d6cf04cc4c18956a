"""What a digest holds: the window since the previous digest, the published articles in it, its Issue.

A digest is a campaign like any other (send/campaign.py: resume, one message per subscriber); its
campaign key names the run it belongs to (`digest-2026-11-30`, periods.py), so one run's digest
cannot go out twice. An article file that cannot be read is left out with a one-line warning: one
work-in-progress file must not stop the digest (`render` of that file still fails loudly).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..content.articles import Article, load_article, load_articles_skipping_broken
from ..content.issue import Issue
from ..errors import ContentError
from ..state import digests
from ..state.digests import DigestRecord
from ..state.engine import engine_for
from .clock import stored
from .periods import legacy_week
from .runs import Run, run_at, run_for

log = logging.getLogger("newsletter.schedule")


@dataclass(frozen=True)
class DigestPlan:
    """What one digest holds: its key, its window, its articles (oldest first) and the run it belongs to."""

    key: str
    since: dt.datetime
    until: dt.datetime
    articles: tuple[Article, ...]
    run: Run | None = None  # None only for a digest frozen by release 0.1 by hand
    pending: bool = False  # frozen by an earlier, interrupted run
    skipped: tuple[str, ...] = ()  # article files that could not be read, one line each

    @property
    def period(self) -> str:
        return self.key.removeprefix("digest-")


def readable_articles(config: Config) -> tuple[list[Article], tuple[str, ...]]:
    """The issues folder's articles, and a one-line warning for each file left out because it is broken."""
    articles, problems = load_articles_skipping_broken(config.path("issues"))
    return articles, tuple(f"{problem} (left out of what the schedule sends)" for problem in problems)


def window_start(config: Config, now: dt.datetime) -> dt.datetime:
    """Where the next digest's window starts: where the previous one's ended, or `lookback` before now."""
    previous = digests.last_until(engine_for(config))
    return stored(previous, config.schedule.timezone) if previous else now - config.schedule.lookback


def _local_naive(moment: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Article dates are naive wall times; they are read in the schedule's zone."""
    return moment.astimezone(tz).replace(tzinfo=None)


def select_articles(
    articles: Sequence[Article], since: dt.datetime, until: dt.datetime, exclude: set[str], tz: dt.tzinfo
) -> list[Article]:
    """Published (not a draft, not dated after `until`), dated after `since`, not in an earlier digest,
    and not scheduled (an article with send_at goes out as its own issue).

    Oldest first, the order a reader meets them in the period.
    """
    lo, hi = _local_naive(since, tz), _local_naive(until, tz)
    chosen = [a for a in articles if a.is_published(hi) and a.date > lo and a.slug not in exclude and a.send_at is None]
    return sorted(chosen, key=lambda a: (a.date, a.slug))


def plan_digest(
    config: Config,
    now: dt.datetime,
    run: Run | None = None,
    *,
    since: dt.datetime | None = None,
) -> DigestPlan:
    """The digest of `run` (by default the run `now` belongs to) as it would go out at `now`.

    Its window starts where the previous digest's ended (or `lookback` before now; `since`
    overrides it: `newsletter digest --since`) and ends now: the articles published so far.
    """
    tz = config.schedule.timezone
    engine = engine_for(config)
    now = now.astimezone(tz)
    run = run or run_for(config, now) or run_at(config, now)
    if since is None:
        since = window_start(config, now)
    elif since.tzinfo is None:
        since = since.replace(tzinfo=tz)
    articles, skipped = readable_articles(config)
    chosen = select_articles(articles, since, now, digests.included_slugs(engine), tz)
    return DigestPlan(run.key, since.astimezone(tz), now, tuple(chosen), run, skipped=skipped)


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
    run = run_at(config, stored(record.run_time, tz)) if record.run_time is not None else None
    return DigestPlan(
        key=record.key,
        since=stored(record.since, tz),
        until=stored(record.until, tz),
        articles=tuple(articles),
        run=run,
        pending=True,
    )


def subject_values(plan: DigestPlan) -> dict[str, Any]:
    """The `[schedule] subject` variables (besides `newsletter`, `articles`) of a digest."""
    legacy = legacy_week(plan.key)
    if legacy is not None or plan.run is None:  # a digest named by release 0.1: keep its subject
        year, week = legacy or plan.until.isocalendar()[:2]
        return {
            "period_label": f"week {week}",
            "week": week,
            "year": year,
            "period": plan.period,
            "period_start": plan.since,
            "period_end": plan.until,
            "run": plan.until,
        }
    run = plan.run
    iso = run.time.isocalendar()
    return {
        "period_label": run.label,
        "week": iso.week,
        "year": iso.year,
        "period": run.period,
        "period_start": run.previous or plan.since,
        "period_end": run.time,
        "run": run.time,
    }


def render_subject(config: Config, plan: DigestPlan) -> str:
    """The `[schedule] subject` template (config/schedule.py names its variables)."""
    return config.schedule.subject.render(newsletter=config.newsletter, articles=plan.articles, **subject_values(plan))


def issue_for_digest(config: Config, plan: DigestPlan) -> Issue:
    """The campaign's Issue: key = the run's digest key, rendered by templates/digest.html and digest.txt."""
    titles = " · ".join(a.title for a in plan.articles)
    return Issue(
        key=plan.key,
        kind="digest",
        subject=render_subject(config, plan),
        articles=plan.articles,
        title=f"{config.newsletter.name}: {subject_values(plan)['period_label']}",
        summary=titles[:150],
        extra={"content": config.schedule.content},
    )


def next_digest_plan(config: Config, now: dt.datetime) -> DigestPlan | None:
    """What `newsletter send --digest` would send at `now`: an interrupted digest first, else the digest
    of the run `now` belongs to. None when that digest already went out, or when nothing is new and
    skip_if_empty is on."""
    engine = engine_for(config)
    for record in digests.pending_records(engine):
        return plan_from_record(config, record)
    plan = plan_digest(config, now)
    if digests.record_for(engine, plan.key) is not None or (not plan.articles and config.schedule.skip_if_empty):
        return None
    return plan


def next_digest(config: Config, now: dt.datetime) -> Issue | None:
    plan = next_digest_plan(config, now)
    return issue_for_digest(config, plan) if plan is not None else None
