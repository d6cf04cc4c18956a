"""Delivery rows: one per subscriber and campaign, holding everything a resumed send needs.

The list is streamed into rows in batches (insert-or-update, so a resume picks up addresses added
since and memory stays flat whatever the list's size) and read back in pages. The hot paths (the
import and the pages) are plain SQL on one DBAPI connection: SQLAlchemy Core's per-row work cost
about as much as validating the list. The same SQL serves SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Engine, and_, delete, func, select, update

from .campaigns import set_status
from .engine import dbapi_sql, dbapi_time, utcnow
from .schema import campaigns, deliveries, suppressions
from .statuses import CampaignStatus, DeliveryStatus

D = DeliveryStatus
_OPEN = (D.PENDING, D.DEFERRED)


class Recipient(Protocol):
    """What a delivery row is made from (content.subscribers.Subscriber)."""

    @property
    def email(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def fields(self) -> Mapping[str, str]: ...

    @property
    def line(self) -> int: ...


class PendingRow(NamedTuple):
    """A row still to send, as a page read returns it (a tuple: one is made per message)."""

    id: int
    email: str
    name: str
    fields: str  # JSON
    line: int
    attempts: int

    def field_values(self) -> dict[str, str]:
        values: dict[str, str] = json.loads(self.fields)
        return values


_UPSERT = (
    "INSERT INTO deliveries (campaign_id, email_key, email, name, fields, line, status, attempts, last_reply,"
    " seen_run, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, '', ?, ?, ?)"
    " ON CONFLICT (campaign_id, email_key) DO UPDATE SET seen_run = excluded.seen_run, name = excluded.name,"
    " fields = excluded.fields"
)
# Rows this run's list confirmed (seen_run), not suppressed since, in id order; `id <= ?` bounds a pass.
_PAGE = (
    "SELECT d.id, d.email, d.name, d.fields, d.line, d.attempts FROM deliveries d"
    " WHERE d.campaign_id = ? AND d.status IN ('pending', 'deferred') AND d.seen_run = ? AND d.id > ? AND d.id <= ?"
    " AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.email = d.email_key) ORDER BY d.id LIMIT ?"
)
_NO_LIMIT = 2**62


def add_subscribers(
    engine: Engine, campaign_id: int, run: int, subscribers: Iterable[Recipient], batch: int = 5000
) -> int:
    """Stream the list into delivery rows: new addresses become pending, known ones are marked seen.

    Returns the number of listed addresses.
    """
    stamp = dbapi_time(engine, utcnow())
    sql = dbapi_sql(engine, _UPSERT)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    total = 0
    rows: list[tuple[Any, ...]] = []
    raw = engine.raw_connection()

    def flush() -> None:
        cursor = raw.cursor()
        try:
            cursor.executemany(sql, rows)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            cursor.close()
        rows.clear()

    try:
        for sub in subscribers:
            email = sub.email
            rows.append((campaign_id, email.lower(), email, sub.name, dumps(sub.fields), sub.line, run, stamp, stamp))
            total += 1
            if len(rows) >= batch:
                flush()
        if rows:
            flush()
    finally:
        raw.close()
    return total


def pending_page(
    engine: Engine, campaign_id: int, run: int, after_id: int, limit: int = 500, upto: int | None = None
) -> list[PendingRow]:
    """The next page of rows to send (pending, or deferred by an earlier run) that run `run` listed, by id.

    A row whose address was suppressed meanwhile (an unsubscribe during the send) is left out.
    """
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        bound = _NO_LIMIT if upto is None else upto
        cursor.execute(dbapi_sql(engine, _PAGE), (campaign_id, run, after_id, bound, limit))
        found = cursor.fetchall()
        raw.commit()  # ends the read transaction (PostgreSQL keeps one open otherwise)
    finally:
        raw.close()
    return [PendingRow(*r) for r in found]


def skip_unlisted_and_suppressed(engine: Engine, campaign_id: int, run: int) -> None:
    """Rows still to send whose address left the list, or is suppressed, are skipped (never sent)."""
    open_rows = and_(deliveries.c.campaign_id == campaign_id, deliveries.c.status.in_(_OPEN))
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(open_rows, deliveries.c.seen_run != run)
            .values(status=D.SKIPPED, last_reply="no longer on the list", updated_at=now)
        )
        conn.execute(
            update(deliveries)
            .where(open_rows, deliveries.c.email_key.in_(select(suppressions.c.email)))
            .values(status=D.SKIPPED, last_reply="suppressed", updated_at=now)
        )


def skip_already_received(engine: Engine, campaign_id: int, key: str, content_hash: str) -> int:
    """After an edit: addresses that got any other version of the issue are skipped in this campaign.

    Every other version counts, whatever its status: after two edits, the first version's
    campaign is superseded but its recipients must still not get a second copy.
    """
    other = select(campaigns.c.id).where(campaigns.c.key == key, campaigns.c.content_hash != content_hash)
    received = select(deliveries.c.email_key).where(deliveries.c.campaign_id.in_(other), deliveries.c.status == D.SENT)
    with engine.begin() as conn:
        return conn.execute(
            update(deliveries)
            .where(
                deliveries.c.campaign_id == campaign_id,
                deliveries.c.status.in_(_OPEN),
                deliveries.c.email_key.in_(received),
            )
            .values(status=D.SKIPPED, last_reply="received an earlier version", updated_at=utcnow())
        ).rowcount


def audience_size(engine: Engine, campaign_id: int) -> int:
    """How many the campaign was for: its rows, less those skipped because they left the list or were suppressed."""
    d = deliveries.c
    gone = and_(d.status == D.SKIPPED, d.last_reply.in_(["no longer on the list", "suppressed"]))
    stmt = select(func.count()).where(d.campaign_id == campaign_id, ~gone)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def sent_count(engine: Engine, campaign_ids: Sequence[int]) -> int:
    stmt = select(func.count()).where(deliveries.c.campaign_id.in_(list(campaign_ids)), deliveries.c.status == D.SENT)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def sent_addresses(engine: Engine, campaign_id: int) -> Iterator[str]:
    """Lower-cased addresses already sent in a campaign (dry runs)."""
    stmt = select(deliveries.c.email_key).where(deliveries.c.campaign_id == campaign_id, deliveries.c.status == D.SENT)
    with engine.connect() as conn:
        yield from conn.execute(stmt).scalars()


def rows_by_id(engine: Engine, ids: Iterable[int]) -> dict[int, tuple[DeliveryStatus, str]]:
    """id -> (status, lower-cased address) for the given delivery rows (to overlay a journal on counts)."""
    wanted = list(ids)
    found: dict[int, tuple[DeliveryStatus, str]] = {}
    d = deliveries.c
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for ident, status, email in conn.execute(select(d.id, d.status, d.email_key).where(d.id.in_(chunk))):
                found[ident] = (DeliveryStatus(status), email)
    return found


def status_counts(engine: Engine, campaign_id: int) -> dict[DeliveryStatus, int]:
    stmt = (
        select(deliveries.c.status, func.count())
        .where(deliveries.c.campaign_id == campaign_id)
        .group_by(deliveries.c.status)
    )
    with engine.connect() as conn:
        return {DeliveryStatus(status): int(n) for status, n in conn.execute(stmt)}


def finish_if_complete(engine: Engine, campaign_id: int) -> bool:
    """Mark finished when no row is pending or deferred; True when it is."""
    counts = status_counts(engine, campaign_id)
    if counts.get(D.PENDING, 0) or counts.get(D.DEFERRED, 0):
        set_status(engine, campaign_id, CampaignStatus.SENDING)
        return False
    set_status(engine, campaign_id, CampaignStatus.FINISHED)
    return True


def last_errors(engine: Engine, campaign_id: int, limit: int = 5) -> list[tuple[str, str, str]]:
    """(email, status, reply) of the most recent failed or deferred rows."""
    d = deliveries.c
    stmt = (
        select(d.email, d.status, d.last_reply)
        .where(d.campaign_id == campaign_id, d.status.in_([D.FAILED, D.DEFERRED]), d.last_reply != "")
        .order_by(d.updated_at.desc(), d.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(e, s, r) for e, s, r in conn.execute(stmt)]


def sent_since(engine: Engine, since: dt.datetime) -> list[dt.datetime]:
    """Send times (any campaign) after `since`: seeds the hourly cap so a rerun keeps the quota."""
    stmt = select(deliveries.c.sent_at).where(deliveries.c.sent_at > since).order_by(deliveries.c.sent_at)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def undo_run_failures(engine: Engine, campaign_id: int, campaign_key: str, since: dt.datetime) -> int:
    """After a systemic stop: this run's permanent failures go back to deferred, unsuppressed.

    A relay that refuses everything with 550 says nothing about the addresses, so they must not
    end up on the suppression list. Returns how many were restored.
    """
    d = deliveries.c
    failed_now = and_(d.campaign_id == campaign_id, d.status == D.FAILED, d.updated_at >= since)
    with engine.begin() as conn:
        emails = list(conn.execute(select(d.email_key).where(failed_now)).scalars())
        for start in range(0, len(emails), 500):
            chunk = emails[start : start + 500]
            conn.execute(
                delete(suppressions).where(
                    suppressions.c.email.in_(chunk),
                    suppressions.c.created_at >= since,
                    suppressions.c.detail.like(f"{campaign_key}: %"),
                )
            )
        conn.execute(update(deliveries).where(failed_now).values(status=D.DEFERRED))
    return len(emails)
