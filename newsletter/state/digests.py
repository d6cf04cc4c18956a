"""Digest records (the articles frozen for each period) and the decisions taken for scheduled runs.

A digest's articles are frozen (status pending, with their slugs) before its campaign starts and the
record becomes sent when the campaign finishes; a crash in between leaves a pending record that the
next run resumes with exactly those articles. In [schedule] mode "each" a run's article is frozen
the same way, as the run's decision `sending` with the article's slug as its key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, or_, select, update

from .engine import insert, utcnow
from .schema import campaigns, digest_articles, digests, schedule_runs
from .statuses import DigestStatus, RunDecision


def naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class DigestRecord:
    key: str
    since: dt.datetime  # naive UTC
    until: dt.datetime
    status: DigestStatus
    slugs: tuple[str, ...]
    run_time: dt.datetime | None = None  # naive UTC; None for a digest sent by hand before 0.2


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
    return [
        DigestRecord(r.key, r.since, r.until, DigestStatus(r.status), tuple(slugs.get(r.key, ())), r.run_time)
        for r in rows
    ]


def record_for(engine: Engine, key: str) -> DigestRecord | None:
    found = _records(engine, digests.c.key == key)
    return found[0] if found else None


def covering_record(engine: Engine, run_time: dt.datetime, own_key: str, legacy_key: str) -> DigestRecord | None:
    """Another digest that already stands for this run: one frozen at or after the run time (its window
    took the run's articles), or one under the ISO-week key earlier releases gave the run's week."""
    found = _records(
        engine,
        or_(digests.c.key == legacy_key, (digests.c.key != own_key) & (digests.c.until >= naive_utc(run_time))),
    )
    return found[0] if found else None


def pending_records(engine: Engine) -> list[DigestRecord]:
    return _records(engine, digests.c.status == DigestStatus.PENDING)


def included_slugs(engine: Engine) -> set[str]:
    """Slugs in any earlier digest, sent or frozen for sending."""
    with engine.connect() as conn:
        return set(conn.execute(select(digest_articles.c.slug)).scalars())


def last_until(engine: Engine) -> dt.datetime | None:
    """Where the previous digest's window ended (naive UTC), or None before the first digest."""
    with engine.connect() as conn:
        return conn.execute(select(digests.c.until).order_by(digests.c.until.desc()).limit(1)).scalar()


def freeze(
    engine: Engine,
    key: str,
    since: dt.datetime,
    until: dt.datetime,
    slugs: Sequence[str],
    run_time: dt.datetime | None,
) -> bool:
    """Record a digest as pending with its articles (one transaction); False when that period has a record."""
    with engine.begin() as conn:
        inserted = conn.execute(
            insert(engine, digests)
            .values(
                key=key,
                since=naive_utc(since),
                until=naive_utc(until),
                run_time=naive_utc(run_time) if run_time else None,
                status=DigestStatus.PENDING,
                recipients=0,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["key"])
        ).rowcount
        if not inserted:
            return False
        if slugs:
            conn.execute(
                digest_articles.insert(),
                [{"digest_key": key, "slug": slug, "position": i} for i, slug in enumerate(slugs)],
            )
    return True


def mark_sent(engine: Engine, key: str, recipients: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(digests)
            .where(digests.c.key == key)
            .values(status=DigestStatus.SENT, recipients=recipients, sent_at=utcnow())
        )


def record_run(engine: Engine, run_time: dt.datetime, digest_key: str, decision: RunDecision) -> None:
    """Remember what was decided for a scheduled run, so a restart neither repeats nor re-logs it."""
    stmt = insert(engine, schedule_runs).values(
        run_time=naive_utc(run_time), digest_key=digest_key, decision=decision, decided_at=utcnow()
    )
    with engine.begin() as conn:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["run_time"]))


def settle_run(engine: Engine, run_time: dt.datetime, decision: RunDecision) -> None:
    """A run decided `sending` (its article frozen) gets its final decision."""
    with engine.begin() as conn:
        conn.execute(
            update(schedule_runs).where(schedule_runs.c.run_time == naive_utc(run_time)).values(decision=decision)
        )


def run_decision(engine: Engine, run_time: dt.datetime) -> RunDecision | None:
    found = run_record(engine, run_time)
    return found[1] if found else None


def run_record(engine: Engine, run_time: dt.datetime) -> tuple[str, RunDecision] | None:
    """(the run's campaign key, its decision), or None while nothing was decided for it."""
    with engine.connect() as conn:
        row = conn.execute(
            select(schedule_runs.c.digest_key, schedule_runs.c.decision).where(
                schedule_runs.c.run_time == naive_utc(run_time)
            )
        ).first()
    return (row.digest_key, RunDecision(row.decision)) if row else None


def runs_decided(engine: Engine, decision: RunDecision) -> list[tuple[dt.datetime, str]]:
    """(run time as naive UTC, campaign key) of the runs with this decision, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(schedule_runs.c.run_time, schedule_runs.c.digest_key)
            .where(schedule_runs.c.decision == decision)
            .order_by(schedule_runs.c.run_time)
        )
        return [(r.run_time, r.digest_key) for r in rows]


@dataclass(frozen=True)
class PublishedDigest:
    """A digest that went out, as the web archive shows it."""

    key: str
    title: str  # the title and subject its campaign was sent with
    subject: str
    sent_at: dt.datetime  # naive UTC
    slugs: tuple[str, ...]


def published(engine: Engine) -> list[PublishedDigest]:
    """Every digest that went out or is going out, newest first, with its articles in the order sent.

    A pending digest is frozen and its campaign started (or resumes after a crash): its emails'
    "View online" links must work while it is still being sent.
    """
    statuses = [DigestStatus.SENT, DigestStatus.PENDING]
    with engine.connect() as conn:
        rows = list(
            conn.execute(
                select(digests.c.key, digests.c.until, digests.c.sent_at).where(digests.c.status.in_(statuses))
            )
        )
        if not rows:
            return []
        keys = [r.key for r in rows]
        slugs: dict[str, list[str]] = {}
        for key, slug in conn.execute(
            select(digest_articles.c.digest_key, digest_articles.c.slug)
            .where(digest_articles.c.digest_key.in_(keys))
            .order_by(digest_articles.c.position)
        ):
            slugs.setdefault(key, []).append(slug)
        titles: dict[str, tuple[str, str]] = {}
        for key, title, subject in conn.execute(
            select(campaigns.c.key, campaigns.c.title, campaigns.c.subject)
            .where(campaigns.c.key.in_(keys))
            .order_by(campaigns.c.created_at, campaigns.c.id)
        ):
            titles[key] = (title, subject)  # the latest campaign of the key wins
    found = [
        PublishedDigest(
            key=r.key,
            title=titles.get(r.key, ("", ""))[0] or r.key,
            subject=titles.get(r.key, ("", ""))[1],
            sent_at=r.sent_at or r.until,
            slugs=tuple(slugs.get(r.key, ())),
        )
        for r in rows
    ]
    return sorted(found, key=lambda d: (d.sent_at, d.key), reverse=True)
