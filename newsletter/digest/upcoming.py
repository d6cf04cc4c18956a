"""What the schedule will send next, of every kind, with what each would hold (`schedule --next N`).

Worked out from the articles as they are now: a digest holds the articles published by its run
that no earlier digest took; in mode "each" every run takes the oldest article waiting at its
time; a scheduled article goes at its send_at. Articles written later change the picture.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..config import Config
from ..content.articles import Article
from ..state import digests
from ..state.engine import engine_for
from ..state.statuses import RunDecision
from .cadence import cadence_for
from .clock import utc
from .each import waiting_articles
from .outcome import count_articles
from .plan import readable_articles, select_articles, window_start
from .runs import Run, run_at, run_for
from .scheduled import undecided

_FAR = dt.timedelta(days=365 * 100)


@dataclass(frozen=True)
class Upcoming:
    """One send to come: when, what kind, its campaign key, and what it would hold."""

    when: dt.datetime
    kind: str  # "digest", "article" (a run in mode "each"), "scheduled" (an article's send_at)
    key: str
    holds: str
    due: bool = False  # its time came and it is owed now

    @property
    def what(self) -> str:
        """'digest-2026-11-30', 'article 2026-11-20-a', 'scheduled 2026-12-01-launch', 'article'."""
        if self.kind == "digest":
            return self.key
        return f"{self.kind} {self.key}".rstrip()


def _titles(articles: list[Article]) -> str:
    return "; ".join(f"{a.title} ({a.slug})" for a in articles)


def _title(article: Article) -> str:
    return f"“{article.title}”"


def _runs(config: Config, now: dt.datetime, count: int) -> list[Run]:
    first = run_for(config, now)
    if first is None:
        return []
    cadence = cadence_for(config)
    following = cadence.runs(max(first.time, now, key=utc), count - 1)
    return [first, *(run_at(config, t, cadence=cadence) for t in following)]


def _digests(config: Config, now: dt.datetime, runs: list[Run], articles: list[Article]) -> list[Upcoming]:
    engine = engine_for(config)
    tz = config.schedule.timezone
    taken = digests.included_slugs(engine)
    since = window_start(config, now)
    out = []
    for run in runs:
        until = max(run.time, now, key=utc)
        if digests.record_for(engine, run.key) is not None:
            out.append(Upcoming(run.time, "digest", run.key, "already sent (ahead of its run)", run.due))
            continue
        chosen = select_articles(articles, since, until, taken, tz)
        if chosen:
            holds = f"{count_articles(len(chosen))}: {_titles(chosen)}"
        elif config.schedule.skip_if_empty:
            holds = "no articles yet: skipped (skip_if_empty)"
        else:
            holds = "no articles yet: a digest saying so"
        out.append(Upcoming(run.time, "digest", run.key, holds, run.due))
        taken |= {a.slug for a in chosen}
        since = until
    return out


def _each(config: Config, now: dt.datetime, runs: list[Run], articles: list[Article]) -> list[Upcoming]:
    engine = engine_for(config)
    queue = waiting_articles(config, now + _FAR, articles)  # everything that will be published
    out = []
    for run in runs:
        frozen = digests.run_record(engine, run.time)
        if frozen is not None and frozen[1] == RunDecision.SENDING:
            out.append(Upcoming(run.time, "article", frozen[0], "being sent (interrupted; resumes)", run.due))
            continue
        wall = max(run.time, now, key=utc).replace(tzinfo=None)
        ready = next((a for a in queue if a.is_published(wall)), None)
        if ready is None:
            out.append(Upcoming(run.time, "article", "", "none waiting yet: skipped", run.due))
            continue
        queue.remove(ready)
        out.append(Upcoming(run.time, "article", ready.slug, _title(ready), run.due))
    return out


def upcoming(config: Config, now: dt.datetime, count: int) -> tuple[list[Upcoming], tuple[str, ...]]:
    """The next `count` sends of every kind, soonest first, and the broken files left out of them."""
    tz = config.schedule.timezone
    now = now.astimezone(tz)
    articles, broken = readable_articles(config)
    runs = _runs(config, now, count)
    planned = (
        _each(config, now, runs, articles) if config.schedule.mode == "each" else _digests(config, now, runs, articles)
    )
    for item in undecided(config, articles):
        due = utc(item.when) <= utc(now)
        if not due or utc(now) - utc(item.when) <= config.schedule.catch_up:
            planned.append(Upcoming(item.when, "scheduled", item.slug, f"{_title(item.article)} (its send_at)", due))
    planned.sort(key=lambda u: (utc(u.when), u.kind != "scheduled"))
    return planned[:count], broken
