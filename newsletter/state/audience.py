"""Who a campaign reaches: active subscribers (of some tags), copied into its delivery rows in one statement.

The list lives in the subscribers table, so a run's import is one INSERT ... SELECT (insert-or-update,
like the CSV import it replaces: new addresses become pending rows, known ones are marked seen in
this run), done by the database without a row passing through Python. Suppressions are applied
after it by `deliveries.skip_unlisted_and_suppressed`, as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Engine, case, func, select, update

from .deliveries import D
from .engine import dbapi_sql, dbapi_time, utcnow
from .schema import deliveries, subscriber_tags, subscribers, suppressions
from .statuses import SubscriberStatus
from .subscribers import has_tag_clause


class AudienceRow(NamedTuple):
    """One subscriber a send would reach (a dry run builds its message from this)."""

    email: str
    name: str
    fields: str  # JSON
    line: int


def _tag_sql(tags: Sequence[str]) -> str:
    if not tags:
        return ""
    marks = ", ".join("?" * len(tags))
    return f" AND EXISTS (SELECT 1 FROM subscriber_tags t WHERE t.subscriber_id = s.id AND t.tag IN ({marks}))"


def _delivery_sql(tags: Sequence[str], where: str = "") -> str:
    """INSERT ... SELECT of active subscribers into a campaign's delivery rows (new ones pending, known ones seen)."""
    return (
        "INSERT INTO deliveries (campaign_id, email_key, email, name, fields, line, status, attempts, last_reply,"
        " seen_run, created_at, updated_at)"
        " SELECT ?, s.email_key, s.email, s.name, s.fields, s.line, 'pending', 0, '', ?, ?, ? FROM subscribers s"
        f" WHERE s.status = 'active'{where}{_tag_sql(tags)}"
        " ON CONFLICT (campaign_id, email_key) DO UPDATE SET seen_run = excluded.seen_run, name = excluded.name,"
        " fields = excluded.fields"
    )


def add_deliveries(
    engine: Engine, campaign_id: int, run: int, tags: Sequence[str] = (), *, except_csv: bool = False
) -> int:
    """Active subscribers (with any of `tags`) into the campaign's delivery rows; returns how many.

    `except_csv`: only the rows the CSV does not own (signups, imports, the operator's), while the
    CSV's own come in batch by batch as it is synced (`add_deliveries_for`).
    """
    stamp = dbapi_time(engine, utcnow())
    sql = _delivery_sql(tags, " AND s.source <> 'csv'" if except_csv else "")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(dbapi_sql(engine, sql), (campaign_id, run, stamp, stamp, *tags))
            count = int(cursor.rowcount)
            raw.commit()
        finally:
            cursor.close()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
    return count


def add_deliveries_for(engine: Engine, raw: Any, campaign_id: int, run: int, keys: Sequence[str]) -> None:
    """The given addresses' delivery rows, on `raw` inside the caller's transaction (a CSV sync's batch)."""
    if not keys:
        return
    marks = ", ".join("?" * len(keys))
    sql = _delivery_sql((), f" AND s.email_key IN ({marks})")
    stamp = dbapi_time(engine, utcnow())
    cursor = raw.cursor()
    try:
        cursor.execute(dbapi_sql(engine, sql), (campaign_id, run, stamp, stamp, *keys))
    finally:
        cursor.close()


def last_delivery_id(engine: Engine) -> int:
    """The highest delivery row id so far: rows a run creates come after it."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(deliveries.c.id), 0))).scalar_one())


def counts(engine: Engine, tags: Sequence[str] = ()) -> tuple[int, int]:
    """(active subscribers with any of `tags`, how many of them are suppressed)."""
    is_suppressed = subscribers.c.email_key.in_(select(suppressions.c.email))
    stmt = select(func.count(), func.coalesce(func.sum(case((is_suppressed, 1), else_=0)), 0)).where(
        subscribers.c.status == SubscriberStatus.ACTIVE
    )
    if tags:
        stmt = stmt.where(has_tag_clause(tags))
    with engine.connect() as conn:
        listed, suppressed = conn.execute(stmt).one()
    return int(listed), int(suppressed)


def count_received(engine: Engine, tags: Sequence[str], others: Sequence[int]) -> int:
    """Active subscribers (with any of `tags`) who got this issue in one of the `others` campaigns."""
    if not others:
        return 0
    received = select(deliveries.c.email_key).where(
        deliveries.c.campaign_id.in_(list(others)), deliveries.c.status == D.SENT
    )
    stmt = select(func.count()).where(
        subscribers.c.status == SubscriberStatus.ACTIVE, subscribers.c.email_key.in_(received)
    )
    if tags:
        stmt = stmt.where(has_tag_clause(tags))
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def received_addresses(engine: Engine, others: Sequence[int]) -> Iterator[str]:
    """Lower-cased addresses that got this issue in one of the `others` campaigns (dry runs)."""
    if not others:
        return
    stmt = select(deliveries.c.email_key).where(
        deliveries.c.campaign_id.in_(list(others)), deliveries.c.status == D.SENT
    )
    with engine.connect() as conn:
        yield from conn.execute(stmt).scalars()


def iter_audience(engine: Engine, tags: Sequence[str] = (), page: int = 2000) -> Iterator[AudienceRow]:
    """Active subscribers with any of `tags`, in id order, a page at a time (suppressions not applied)."""
    after = 0
    s = subscribers.c
    while True:
        stmt = select(s.id, s.email, s.name, s.fields, s.line).where(s.status == SubscriberStatus.ACTIVE, s.id > after)
        if tags:
            stmt = stmt.where(has_tag_clause(tags))
        with engine.connect() as conn:
            rows = conn.execute(stmt.order_by(s.id).limit(page)).all()
        for r in rows:
            yield AudienceRow(r.email, r.name, r.fields, r.line)
        if len(rows) < page:
            return
        after = rows[-1].id


def unknown_tags(engine: Engine, tags: Sequence[str]) -> list[str]:
    """The tags no subscriber carries (a typo in --tag or `audience:`)."""
    if not tags:
        return []
    stmt = select(subscriber_tags.c.tag).where(subscriber_tags.c.tag.in_(list(tags))).distinct()
    with engine.connect() as conn:
        known = set(conn.execute(stmt).scalars())
    return [t for t in tags if t not in known]


def skip_received_in(engine: Engine, campaign_id: int, others: Sequence[int]) -> int:
    """Rows still to send whose address already got this issue in another of its campaigns (another audience)."""
    if not others:
        return 0
    received = select(deliveries.c.email_key).where(
        deliveries.c.campaign_id.in_(list(others)), deliveries.c.status == D.SENT
    )
    with engine.begin() as conn:
        return conn.execute(
            update(deliveries)
            .where(
                deliveries.c.campaign_id == campaign_id,
                deliveries.c.status.in_([D.PENDING, D.DEFERRED]),
                deliveries.c.email_key.in_(received),
            )
            .values(status=D.SKIPPED, last_reply="received this issue in another send", updated_at=utcnow())
        ).rowcount
