"""The weekly digest: which articles it holds, its Issue, and sending it exactly once.

A digest is a campaign like any other (campaign.py: resume, one message per subscriber); its
campaign key is its ISO week (`digest-2026-W48`), so one week's digest cannot go out twice.

Crash safety: the chosen articles are *frozen* (a `digests` row with status "pending" and its
slugs) before the campaign starts, and the row becomes "sent" when the campaign finishes. A
crash in between leaves a pending digest that the next run resumes with exactly those articles;
pending articles are never offered to another digest, so nothing is lost or sent twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from jinja2 import Environment, StrictUndefined, TemplateError
from sqlalchemy import Column, DateTime, Engine, ForeignKey, Integer, String, Table, select, update
from sqlalchemy.dialects.sqlite import insert

from .config import Config
from .content import Article, Issue, load_article, load_articles
from .db import engine_for, metadata, utcnow
from .errors import ConfigError, ContentError, NewsletterError
from .schedule import LeaseLock, ScheduleSettings, format_both, record_run, run_decision, schedule_settings

if TYPE_CHECKING:
    from .campaign import EditChoice

UTC = dt.UTC
PENDING, SENT = "pending", "sent"
LOCK_NAME = "digest"
log = logging.getLogger("newsletter.schedule")

digests = Table(
    "digests",
    metadata,
    Column("key", String, primary_key=True),  # digest-2026-W48, also the campaign key
    Column("since", DateTime, nullable=False),  # UTC; the window is (since, until]
    Column("until", DateTime, nullable=False),  # UTC; the next digest's window starts here
    Column("run_time", DateTime),  # UTC scheduled time, when it came from the schedule
    Column("status", String, nullable=False),  # pending | sent
    Column("recipients", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
)

digest_articles = Table(
    "digest_articles",
    metadata,
    Column("digest_key", String, ForeignKey("digests.key", ondelete="CASCADE"), primary_key=True),
    Column("slug", String, primary_key=True),
    Column("position", Integer, nullable=False),
)


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(naive_utc: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    return naive_utc.replace(tzinfo=UTC).astimezone(tz)


def period(moment: dt.datetime) -> str:
    """'2026-W48': the ISO week of a run time, in the schedule's zone."""
    iso = moment.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def digest_key(moment: dt.datetime) -> str:
    return f"digest-{period(moment)}"


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


# --- records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestRecord:
    key: str
    since: dt.datetime  # naive UTC
    until: dt.datetime
    status: str
    slugs: tuple[str, ...]


def _records(engine: Engine, where: Any = None) -> list[DigestRecord]:
    stmt = select(digests).order_by(digests.c.until)
    if where is not None:
        stmt = stmt.where(where)
    with engine.connect() as conn:
        rows = list(conn.execute(stmt))
        slugs: dict[str, list[str]] = {}
        for key, slug in conn.execute(
            select(digest_articles.c.digest_key, digest_articles.c.slug).order_by(digest_articles.c.position)
        ):
            slugs.setdefault(key, []).append(slug)
    return [DigestRecord(r.key, r.since, r.until, r.status, tuple(slugs.get(r.key, ()))) for r in rows]


def record_for(engine: Engine, key: str) -> DigestRecord | None:
    found = _records(engine, digests.c.key == key)
    return found[0] if found else None


def pending_records(engine: Engine) -> list[DigestRecord]:
    return _records(engine, digests.c.status == PENDING)


def included_slugs(engine: Engine) -> set[str]:
    """Slugs in any earlier digest, sent or frozen for sending."""
    with engine.connect() as conn:
        return set(conn.execute(select(digest_articles.c.slug)).scalars())


def last_until(engine: Engine) -> dt.datetime | None:
    """Where the previous digest's window ended (naive UTC), or None before the first digest."""
    with engine.connect() as conn:
        return conn.execute(select(digests.c.until).order_by(digests.c.until.desc()).limit(1)).scalar()


def freeze(engine: Engine, plan: DigestPlan, run_time: dt.datetime | None) -> bool:
    """Record the plan as pending (one transaction); False when that period already has a record."""
    with engine.begin() as conn:
        inserted = conn.execute(
            insert(digests)
            .values(
                key=plan.key,
                since=_naive_utc(plan.since),
                until=_naive_utc(plan.until),
                run_time=_naive_utc(run_time) if run_time else None,
                status=PENDING,
                recipients=0,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["key"])
        ).rowcount
        if not inserted:
            return False
        if plan.articles:
            conn.execute(
                insert(digest_articles),
                [{"digest_key": plan.key, "slug": a.slug, "position": i} for i, a in enumerate(plan.articles)],
            )
    return True


def mark_sent(engine: Engine, key: str, recipients: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(digests).where(digests.c.key == key).values(status=SENT, recipients=recipients, sent_at=utcnow())
        )


# --- selection -------------------------------------------------------------------------------


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
    settings: ScheduleSettings | None = None,
) -> DigestPlan:
    """The digest that would go out at `now`: window since the previous digest (or `lookback`).

    `since` overrides the window's start (`newsletter digest --since`); `run_time` names the period
    (a caught-up Monday run sent on Tuesday still belongs to Monday's week).
    """
    settings = settings or schedule_settings(config)
    engine = engine_for(config)
    now = now.astimezone(settings.tz)
    key = digest_key((run_time or now).astimezone(settings.tz))
    if since is None:
        previous = last_until(engine)
        since = _aware(previous, settings.tz) if previous else now - settings.lookback
    elif since.tzinfo is None:
        since = since.replace(tzinfo=settings.tz)
    chosen = select_articles(load_articles(config.path("issues")), since, now, included_slugs(engine), settings.tz)
    return DigestPlan(key=key, since=since.astimezone(settings.tz), until=now, articles=tuple(chosen))


def _plan_from_record(config: Config, record: DigestRecord, settings: ScheduleSettings) -> DigestPlan:
    """A frozen digest, reloaded with the same articles (their current text)."""
    folder = config.path("issues")
    articles = []
    for slug in record.slugs:
        try:
            articles.append(load_article(folder / f"{slug}.md"))
        except ContentError:
            log.warning("digest %s: article %s is gone; sending the rest", record.key, slug)
    return DigestPlan(
        key=record.key,
        since=_aware(record.since, settings.tz),
        until=_aware(record.until, settings.tz),
        articles=tuple(articles),
        pending=True,
    )


def render_subject(config: Config, settings: ScheduleSettings, plan: DigestPlan) -> str:
    """The `[schedule] subject` template with `newsletter`, `week` (48), `year`, `period`, `articles`."""
    week = int(plan.period.rsplit("W", 1)[1])
    year = int(plan.period.split("-", 1)[0])
    try:
        template = Environment(undefined=StrictUndefined, autoescape=False).from_string(settings.subject)
        subject = template.render(
            newsletter=config.newsletter, week=week, year=year, period=plan.period, articles=plan.articles
        )
    except TemplateError as exc:
        where = str(config.source) if config.source else "built-in defaults"
        raise ConfigError(f"{where}: [schedule] subject: {exc}; the template may use newsletter, week, year") from None
    return " ".join(subject.split())


def issue_for_digest(config: Config, plan: DigestPlan, settings: ScheduleSettings | None = None) -> Issue:
    """The campaign's Issue: key = period, rendered by templates/digest.html and digest.txt."""
    settings = settings or schedule_settings(config)
    titles = " · ".join(a.title for a in plan.articles)
    week = int(plan.period.rsplit("W", 1)[1])
    return Issue(
        key=plan.key,
        kind="digest",
        subject=render_subject(config, settings, plan),
        articles=plan.articles,
        title=f"{config.newsletter.name}: week {week}",
        summary=titles[:150],
        extra={"content": settings.content},
    )


def next_digest(config: Config, now: dt.datetime, since: dt.datetime | None = None) -> Issue | None:
    """What `newsletter send --digest` would send at `now`: an interrupted digest first, else a new one.

    None when that period's digest was already sent, or when nothing is new and skip_if_empty is on.
    """
    settings = schedule_settings(config)
    engine = engine_for(config)
    for record in pending_records(engine):
        return issue_for_digest(config, _plan_from_record(config, record, settings), settings)
    plan = plan_digest(config, now, since=since, settings=settings)
    existing = record_for(engine, plan.key)
    if existing is not None or (not plan.articles and settings.skip_if_empty):
        return None
    return issue_for_digest(config, plan, settings)


def due_run(config: Config, now: dt.datetime) -> dt.datetime | None:
    """For cron (`send --digest --if-due`): the latest scheduled run time that is owed at `now`.

    Owed = it has passed, at most `catch_up` ago, nothing was decided for it yet, and its period's
    digest has not been sent. Run this as often as you like: at most one digest per period.
    """
    settings = schedule_settings(config)
    now = now.astimezone(settings.tz)
    run_time = settings.crontab.last_at_or_before(now)
    if run_time is None or now - run_time > settings.catch_up:
        return None
    engine = engine_for(config)
    if run_decision(engine, run_time) is not None:
        return None
    record = record_for(engine, digest_key(run_time))
    if record is not None and record.status == SENT:
        return None
    return run_time


# --- sending ---------------------------------------------------------------------------------

Status = Literal["sent", "empty", "already-sent", "stopped", "locked"]


@dataclass(frozen=True)
class DigestOutcome:
    status: Status
    key: str
    recipients: int = 0
    articles: int = 0

    @property
    def message(self) -> str:
        period_ = self.key.removeprefix("digest-")
        if self.status == "sent":
            articles = f"{self.articles} article{'' if self.articles == 1 else 's'}"
            return f"sent digest {period_} to {self.recipients} subscribers ({articles})"
        if self.status == "empty":
            return "nothing new: skipped"
        if self.status == "already-sent":
            return f"digest {period_} was already sent: skipped"
        if self.status == "locked":
            return f"digest {period_}: another process is sending it: skipped"
        return f"digest {period_}: stopped before the end; the next start resumes it"


async def _run_campaign(
    config: Config, issue: Issue, stop: asyncio.Event | None, reporter: Any, on_edit: EditChoice = "remaining"
) -> tuple[bool, int] | None:
    """campaign.run_campaign, reduced to (finished, subscribers who have it); None when locked.

    A digest already finished (a crash after the campaign, before `mark_sent`) counts as sent.
    """
    from . import campaign, store

    engine = engine_for(config)
    try:
        result = await campaign.run_campaign(config, issue, stop=stop, reporter=reporter, on_edit=on_edit)
    except campaign.AlreadySent:
        return True, store.sent_count(engine, [c.id for c in store.campaigns_for(engine, issue.key)])
    except store.CampaignLocked as exc:
        log.info("%s", exc)
        return None
    return result.finished, result.sent + result.already_sent


async def _send_plan(
    config: Config,
    plan: DigestPlan,
    settings: ScheduleSettings,
    stop: asyncio.Event | None,
    reporter: Any,
    on_edit: EditChoice = "remaining",
) -> DigestOutcome:
    issue = issue_for_digest(config, plan, settings)
    ran = await _run_campaign(config, issue, stop, reporter, on_edit)
    if ran is None:
        return DigestOutcome("locked", plan.key, 0, len(plan.articles))
    finished, sent = ran
    if not finished:
        return DigestOutcome("stopped", plan.key, sent, len(plan.articles))
    await asyncio.to_thread(mark_sent, engine_for(config), plan.key, sent)
    return DigestOutcome("sent", plan.key, sent, len(plan.articles))


async def resume_pending(
    config: Config, *, stop: asyncio.Event | None = None, reporter: Any = None, on_edit: EditChoice = "remaining"
) -> list[DigestOutcome]:
    """Finish digests frozen by a run that was stopped or crashed (same articles, same campaign)."""
    settings = schedule_settings(config)
    outcomes = []
    for record in pending_records(engine_for(config)):
        if stop is not None and stop.is_set():
            break
        log.info("resuming digest %s (interrupted earlier)", record.key.removeprefix("digest-"))
        outcome = await _send_plan(
            config, _plan_from_record(config, record, settings), settings, stop, reporter, on_edit
        )
        log.info("%s", outcome.message)
        outcomes.append(outcome)
    return outcomes


async def send_digest(
    config: Config,
    now: dt.datetime,
    *,
    run_time: dt.datetime | None = None,
    since: dt.datetime | None = None,
    stop: asyncio.Event | None = None,
    reporter: Any = None,
    wait_for_lock: bool = True,
    on_edit: EditChoice = "remaining",
) -> DigestOutcome:
    """Send the digest for `run_time`'s period (or `now`'s): the one entry point for scheduler and CLI.

    Under the state database's digest lock: finish interrupted digests, skip a period already
    sent, skip an empty digest when skip_if_empty, else freeze the articles and run the campaign.
    With `run_time`, the decision is recorded so the run is never repeated or re-logged.
    """
    settings = schedule_settings(config)
    engine = engine_for(config)
    now = now.astimezone(settings.tz)
    key = digest_key((run_time or now).astimezone(settings.tz))
    lock = LeaseLock(engine, LOCK_NAME)
    if wait_for_lock:
        if not await lock.acquire(stop):
            return DigestOutcome("stopped", key)
    elif not lock.try_acquire():
        return DigestOutcome("locked", key)
    else:
        await lock.acquire(stop)  # starts the renewal of the lease just taken
    try:
        await resume_pending(config, stop=stop, reporter=reporter, on_edit=on_edit)
        if stop is not None and stop.is_set():
            return DigestOutcome("stopped", key)
        existing = record_for(engine, key)
        if existing is not None:
            outcome = DigestOutcome("already-sent", key)
        else:
            plan = plan_digest(config, now, since=since, run_time=run_time, settings=settings)
            if not plan.articles and settings.skip_if_empty:
                outcome = DigestOutcome("empty", key)
            else:
                freeze(engine, plan, run_time)
                outcome = await _send_plan(config, plan, settings, stop, reporter, on_edit)
        if run_time is not None and outcome.status != "stopped":
            record_run(engine, run_time, key, outcome.status)
        return outcome
    finally:
        await lock.aclose()


@dataclass
class DigestRunner:
    """The scheduler's job (schedule.DigestJob): logs each decision in the words users read."""

    config: Config
    reporter: Any = None

    async def resume(self, now: dt.datetime, stop: asyncio.Event) -> None:
        if pending_records(engine_for(self.config)):
            lock = LeaseLock(engine_for(self.config), LOCK_NAME)
            if await lock.acquire(stop):
                try:
                    await resume_pending(self.config, stop=stop, reporter=self.reporter)
                except NewsletterError as exc:
                    log.error("resuming the interrupted digest failed: %s", exc)
                finally:
                    await lock.aclose()

    async def run(self, run_time: dt.datetime, now: dt.datetime, stop: asyncio.Event) -> None:
        log.debug("run for %s", format_both(run_time))
        try:
            outcome = await send_digest(self.config, now, run_time=run_time, stop=stop, reporter=self.reporter)
        except NewsletterError as exc:
            log.error("digest %s failed: %s (it resumes on the next run or start)", period(run_time), exc)
            return
        log.info("%s", outcome.message)
