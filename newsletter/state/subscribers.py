"""The list in the database: one row per address, its tags and consent record; the operator's changes.

A row's `status` is its own (pending, active, or what the CSV says); the suppression list wins over
it, so the status shown and used is `effective`: the suppression's reason when there is one.
Listing and export read in pages of ids, so memory does not grow with the list.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, and_, delete, exists, func, select, update
from sqlalchemy.sql import ColumnElement

from .engine import insert, utcnow
from .schema import subscriber_fields, subscriber_tags, subscribers, suppressions
from .statuses import SubscriberSource, SubscriberStatus

S = SubscriberStatus
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
effective_status = func.coalesce(suppressions.c.reason, subscribers.c.status)


@dataclass(frozen=True)
class SubscriberRow:
    id: int
    email: str
    name: str
    first_name: str
    status: str  # the row's own
    effective: str  # the suppression's reason when suppressed, else `status`
    source: str
    fields: dict[str, str]
    line: int
    consent_how: str
    consent_at: dt.datetime
    consent_detail: str
    confirmed_at: dt.datetime | None
    tags: tuple[str, ...]

    @property
    def consent(self) -> str:
        """One line: how and when, and the confirmation of a signup."""
        text = f"{self.consent_how} {self.consent_at:%Y-%m-%d %H:%M} UTC"
        if self.consent_detail:
            text += f" ({self.consent_detail})"
        if self.confirmed_at is not None:
            text += f", confirmed {self.confirmed_at:%Y-%m-%d %H:%M} UTC"
        return text


_COLUMNS = (
    subscribers.c.id,
    subscribers.c.email,
    subscribers.c.name,
    subscribers.c.first_name,
    subscribers.c.status,
    effective_status.label("effective"),
    subscribers.c.source,
    subscribers.c.fields,
    subscribers.c.line,
    subscribers.c.consent_how,
    subscribers.c.consent_at,
    subscribers.c.consent_detail,
    subscribers.c.confirmed_at,
)


def _joined() -> Any:
    return subscribers.outerjoin(suppressions, suppressions.c.email == subscribers.c.email_key)


def has_tag_clause(tags: Sequence[str]) -> ColumnElement[bool]:
    """Subscribers with any of `tags`."""
    return exists().where(subscriber_tags.c.subscriber_id == subscribers.c.id, subscriber_tags.c.tag.in_(list(tags)))


def _tags_of(conn: Any, ids: list[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {i: [] for i in ids}
    rows = conn.execute(
        select(subscriber_tags.c.subscriber_id, subscriber_tags.c.tag)
        .where(subscriber_tags.c.subscriber_id.in_(ids))
        .order_by(subscriber_tags.c.tag)
    )
    for ident, tag in rows:
        found[ident].append(tag)
    return {i: tuple(t) for i, t in found.items()}


def iter_subscribers(
    engine: Engine, *, status: str | None = None, tags: Sequence[str] = (), page: int = 1000
) -> Iterator[SubscriberRow]:
    """Every subscriber in id order (the order they came in), optionally by effective status and tags."""
    after = 0
    while True:
        stmt = select(*_COLUMNS).select_from(_joined()).where(subscribers.c.id > after)
        if status is not None:
            stmt = stmt.where(effective_status == status)
        if tags:
            stmt = stmt.where(has_tag_clause(tags))
        with engine.connect() as conn:
            rows = conn.execute(stmt.order_by(subscribers.c.id).limit(page)).all()
            tags_by_id = _tags_of(conn, [r.id for r in rows]) if rows else {}
        for r in rows:
            values = dict(r._mapping)
            values["fields"] = json.loads(values["fields"])
            yield SubscriberRow(**values, tags=tags_by_id[r.id])
        if len(rows) < page:
            return
        after = rows[-1].id


def find(engine: Engine, email: str) -> SubscriberRow | None:
    stmt = select(*_COLUMNS).select_from(_joined()).where(subscribers.c.email_key == email.lower())
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["fields"] = json.loads(values["fields"])
        return SubscriberRow(**values, tags=_tags_of(conn, [row.id])[row.id])


def count_by(engine: Engine, what: Literal["effective", "source"]) -> dict[str, int]:
    column = effective_status if what == "effective" else subscribers.c.source
    with engine.connect() as conn:
        rows = conn.execute(select(column, func.count()).select_from(_joined()).group_by(column))
        return {key: int(n) for key, n in rows}


def tag_counts(engine: Engine) -> dict[str, int]:
    """Tag -> subscribers carrying it (any status)."""
    stmt = select(subscriber_tags.c.tag, func.count()).group_by(subscriber_tags.c.tag).order_by(subscriber_tags.c.tag)
    with engine.connect() as conn:
        return {tag: int(n) for tag, n in conn.execute(stmt)}


def field_names(engine: Engine) -> list[str]:
    """Every custom field any subscriber carries (templates may use them as subscriber.<name>)."""
    with engine.connect() as conn:
        return list(conn.execute(select(subscriber_fields.c.name).order_by(subscriber_fields.c.name)).scalars())


def first_active(engine: Engine) -> SubscriberRow | None:
    """The first subscriber a send would reach (previews are personalized for it when the CSV has none)."""
    return next(iter_subscribers(engine, status=str(S.ACTIVE), page=1), None)


# --- the operator's changes --------------------------------------------------------------------

AddOutcome = Literal["added", "activated", "updated", "unchanged"]


def add_by_operator(
    engine: Engine, email: str, name: str | None, first_name: str | None, tags: Sequence[str]
) -> AddOutcome:
    """`subscribers add`: a new active row, or an existing one made active and the operator's own.

    The caller refuses suppressed and erased addresses first. `name`/`first_name` None: keep.
    """
    key = email.lower()
    now = utcnow()
    with engine.begin() as conn:
        old = conn.execute(
            select(subscribers.c.id, subscribers.c.name, subscribers.c.first_name, subscribers.c.status)
            .add_columns(subscribers.c.source, subscribers.c.fields)
            .where(subscribers.c.email_key == key)
        ).first()
        if old is None:
            new_name, new_first = name or "", first_name or ""
            fields = {"email": email, "name": new_name, "first_name": new_first}
            ident = conn.execute(
                insert(engine, subscribers)
                .values(
                    email_key=key,
                    email=email,
                    name=new_name,
                    first_name=new_first,
                    status=S.ACTIVE,
                    source=SubscriberSource.OPERATOR,
                    fields=_dumps(fields),
                    line=0,
                    consent_how=SubscriberSource.OPERATOR,
                    consent_at=now,
                    consent_detail="subscribers add",
                    consent_ip="",
                    created_at=now,
                    updated_at=now,
                )
                .returning(subscribers.c.id)
            ).scalar_one()
            _add_tags(engine, conn, ident, tags)
            return "added"
        fields = json.loads(old.fields)
        values: dict[str, Any] = {}
        if name is not None and name != old.name:
            values["name"] = fields["name"] = name
        if first_name is not None and first_name != old.first_name:
            values["first_name"] = fields["first_name"] = first_name
        activated = old.status != S.ACTIVE
        if activated:
            consent = {"consent_how": SubscriberSource.OPERATOR, "consent_at": now, "consent_detail": "subscribers add"}
            values.update(status=S.ACTIVE, source=SubscriberSource.OPERATOR, **consent)
        added_tags = _add_tags(engine, conn, old.id, tags)
        if values:
            values.update(fields=_dumps(fields), updated_at=now)
            conn.execute(update(subscribers).where(subscribers.c.id == old.id).values(**values))
        if activated:
            return "activated"
        return "updated" if values or added_tags else "unchanged"


def _add_tags(engine: Engine, conn: Any, ident: int, tags: Sequence[str]) -> int:
    added = 0
    for tag in dict.fromkeys(tags):
        stmt = insert(engine, subscriber_tags).values(subscriber_id=ident, tag=tag).on_conflict_do_nothing()
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING.
        added += len(conn.execute(stmt.returning(subscriber_tags.c.tag)).all())
    return added


def set_tag(engine: Engine, email: str, tag: str, present: bool) -> bool | None:
    """Tag or untag; None when the address is not on the list, else whether anything changed."""
    with engine.begin() as conn:
        ident = conn.execute(select(subscribers.c.id).where(subscribers.c.email_key == email.lower())).scalar()
        if ident is None:
            return None
        if present:
            return _add_tags(engine, conn, ident, [tag]) > 0
        gone = conn.execute(
            delete(subscriber_tags).where(and_(subscriber_tags.c.subscriber_id == ident, subscriber_tags.c.tag == tag))
        )
        return gone.rowcount > 0


def csv_rows(engine: Engine) -> int:
    """How many rows the CSV sync owns."""
    stmt = select(func.count()).select_from(subscribers).where(subscribers.c.source == SubscriberSource.CSV)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
