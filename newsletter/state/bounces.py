"""Bounce and complaint events, and the rules that follow them, in one transaction per batch of reports.

A hard bounce suppresses the address as bounced, a complaint as complained, at once; soft bounces
count, and `soft_limit` of them (from different campaigns) within `soft_window` suppress it as
bounced. A report counts once: (message_key, email) is unique, and an event that was already
recorded applies no rule again. Suppressions made here say "bounce report: ..." in their detail,
never "<campaign>: ...", so undoing a send run's systemic failures cannot remove them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, func, select

from ..config import format_duration
from ..errors import StateError, one_line
from .engine import dbapi_sql, dbapi_time, utcnow
from .schema import bounce_events, campaigns
from .statuses import BounceKind, DeliveryStatus, SuppressionReason

MAX_TEXT = 500


@dataclass(frozen=True)
class Mailed:
    """A delivery row that sent a campaign's message to an address: what a bounce can be about."""

    delivery_id: int
    campaign_id: int
    campaign_key: str
    message_key: str  # what the campaign's Message-IDs derive from
    email: str  # lower-cased
    status: DeliveryStatus


@dataclass(frozen=True)
class NewEvent:
    email: str
    kind: BounceKind
    campaign_id: int | None
    status: str
    diagnostic: str
    source: str
    identified: str
    message_key: str
    occurred_at: dt.datetime
    about: str = ""  # the campaign's key or "a test send": named in the suppression's detail


@dataclass(frozen=True)
class Recorded:
    """What recording one event did: `new` False when the report was counted before."""

    new: bool
    action: str
    suppressed: bool = False


@dataclass(frozen=True)
class EventRow:
    occurred_at: dt.datetime
    kind: BounceKind
    campaign_key: str
    status: str
    diagnostic: str
    source: str
    identified: str
    action: str

    @property
    def about(self) -> str:
        """The campaign's key, "a test send", or "campaign unknown"."""
        return self.campaign_key or ("a test send" if self.identified == "test token" else "campaign unknown")


@dataclass(frozen=True)
class Rules:
    soft_limit: int
    soft_window: dt.timedelta


# The hot path (a lookup per message, a few statements per event) is plain SQL on one DBAPI
# connection: SQLAlchemy Core's statement building cost more than the queries themselves.
_SELECT_MAILED = (
    "SELECT d.id, d.campaign_id, c.key, c.message_key, d.email_key, d.status"
    " FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id"
)
_DELIVERY = _SELECT_MAILED + " WHERE d.id = ?"
_MAILED = _SELECT_MAILED + " WHERE d.email_key = ? AND d.status = 'sent' ORDER BY d.sent_at DESC, d.id DESC LIMIT ?"
_INSERT_EVENT = (
    "INSERT INTO bounce_events (email, kind, campaign_id, status, diagnostic, source, identified, action,"
    " message_key, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (message_key, email) DO NOTHING RETURNING id"
)
_SOFT = (
    "SELECT id, campaign_id, occurred_at FROM bounce_events"
    " WHERE email = ? AND kind = 'soft' AND occurred_at >= ? AND occurred_at <= ?"
)
_REASON = "SELECT reason FROM suppressions WHERE email = ?"
# A bounce or a complaint also replaces an unsubscribe (the web page may undo only an unsubscribe).
_SUPPRESS = (
    "INSERT INTO suppressions (email, reason, detail, created_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, detail = excluded.detail,"
    " created_at = excluded.created_at WHERE suppressions.reason = 'unsubscribed'"
)


def _mailed(row: Any) -> Mailed:
    ident, campaign_id, key, message_key, email, status = row
    return Mailed(ident, campaign_id, key, message_key, email, DeliveryStatus(status))


def _time(value: Any) -> dt.datetime:
    """A DateTime as the raw connection returns it (SQLite: SQLAlchemy's text form)."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def _soft_count(rows: Sequence[Any], window: dt.timedelta) -> int:
    """The most soft bounces in any `window`, one per campaign (its earliest); reports of no campaign each count."""
    first: dict[object, dt.datetime] = {}
    for ident, campaign_id, at in rows:
        key = campaign_id if campaign_id is not None else f"event-{ident}"
        moment = _time(at)
        first[key] = min(moment, first.get(key, moment))
    times = sorted(first.values())
    best = start = 0
    for end, at in enumerate(times):
        while at - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


class BounceStore:
    """Lookups and recording for one run of bounce processing, on a DBAPI connection of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.raw: Any = engine.raw_connection()
        self.errors: type[Exception] = engine.dialect.loaded_dbapi.Error
        self.sql = {
            name: dbapi_sql(engine, text)
            for name, text in (
                ("delivery", _DELIVERY),
                ("mailed", _MAILED),
                ("insert", _INSERT_EVENT),
                ("soft", _SOFT),
                ("reason", _REASON),
                ("suppress", _SUPPRESS),
            )
        }

    def _read(self, name: str, params: tuple[Any, ...]) -> list[Any]:
        """A lookup. On PostgreSQL it opens the transaction the batch's `record` then commits (a round
        trip saved per lookup); SQLite's driver starts none for a SELECT, so no write lock is held."""
        cursor = self.raw.cursor()
        try:
            cursor.execute(self.sql[name], params)
            return list(cursor.fetchall())
        except self.errors as exc:
            raise self._failed(exc) from None
        finally:
            cursor.close()

    def _failed(self, exc: Exception) -> StateError:
        """A driver's error as the one line a user sees: the database, not the message, is at fault."""
        return StateError(f"the state database failed ({one_line(exc)}); nothing more was recorded or moved")

    def delivery(self, delivery_id: int) -> Mailed | None:
        """The delivery row a VERP token names."""
        found = self._read("delivery", (delivery_id,))
        return _mailed(found[0]) if found else None

    def mailed(self, email: str, limit: int = 50) -> list[Mailed]:
        """The campaigns that sent a message to `email`, newest first (empty: we never mailed it)."""
        return [_mailed(row) for row in self._read("mailed", (email.lower(), limit))]

    def record(self, events: Sequence[NewEvent], rules: Rules) -> list[Recorded]:
        """Store each event and apply its rule, all in one transaction; one Recorded per event, in order.

        What the rule will do is decided first (it reads), so the event is written with it in one
        statement, and the suppression follows only when the event was new: three statements for a
        hard bounce, where round trips to PostgreSQL are most of the cost.
        """
        stamp = dbapi_time(self.engine, utcnow())
        results: list[Recorded] = []
        cursor = self.raw.cursor()
        try:
            for event in events:
                email = event.email.lower()
                action, reason, detail = self._decide(cursor, email, event, rules)
                cursor.execute(
                    self.sql["insert"],
                    (
                        email,
                        str(event.kind),
                        event.campaign_id,
                        event.status[:40],
                        event.diagnostic[:MAX_TEXT],
                        event.source,
                        event.identified,
                        action,
                        event.message_key,
                        dbapi_time(self.engine, event.occurred_at),
                        stamp,
                    ),
                )
                if cursor.fetchone() is None:
                    results.append(Recorded(False, "already counted"))
                    continue
                if reason is not None:
                    cursor.execute(self.sql["suppress"], (email, str(reason), detail[:MAX_TEXT], stamp))
                results.append(Recorded(True, action, suppressed=reason is not None))
            self.raw.commit()
        except self.errors as exc:
            self.raw.rollback()
            raise self._failed(exc) from None
        except BaseException:
            self.raw.rollback()
            raise
        finally:
            cursor.close()
        return results

    def _decide(
        self, cursor: Any, email: str, event: NewEvent, rules: Rules
    ) -> tuple[str, SuppressionReason | None, str]:
        """(what the rules do, the suppression to write or None, its detail) for one event."""
        about = f", {event.about}" if event.about else ""
        if event.kind == BounceKind.COMPLAINT:
            reason, detail = SuppressionReason.COMPLAINED, f"bounce report: complaint ({event.status}){about}"
        elif event.kind == BounceKind.HARD:
            reason, detail = SuppressionReason.BOUNCED, f"bounce report: hard bounce {event.status}{about}"
        else:
            window = rules.soft_window
            around = (
                dbapi_time(self.engine, event.occurred_at - window),
                dbapi_time(self.engine, event.occurred_at + window),
            )
            cursor.execute(self.sql["soft"], (email, *around))
            count = _soft_count([*cursor.fetchall(), (0, event.campaign_id, event.occurred_at)], window)
            within = format_duration(window)
            if count < rules.soft_limit:
                return f"{count} of {rules.soft_limit} soft bounces within {within}", None, ""
            reason = SuppressionReason.BOUNCED
            detail = f"bounce report: {count} soft bounces within {within}, the last {event.status}{about}"
        cursor.execute(self.sql["reason"], (email,))
        before = cursor.fetchone()
        if before is None or before[0] == SuppressionReason.UNSUBSCRIBED:
            return f"suppressed as {reason}", reason, detail
        return f"already suppressed ({before[0]})", None, ""

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
            self.raw = None


def delivery(engine: Engine, delivery_id: int) -> Mailed | None:
    """The delivery row a VERP token names (one lookup; a run uses a BounceStore)."""
    store = BounceStore(engine)
    try:
        return store.delivery(delivery_id)
    finally:
        store.close()


def mailed(engine: Engine, email: str, limit: int = 50) -> list[Mailed]:
    """The campaigns that sent a message to `email`, newest first (one lookup; a run uses a BounceStore)."""
    store = BounceStore(engine)
    try:
        return store.mailed(email, limit)
    finally:
        store.close()


def record(engine: Engine, events: Sequence[NewEvent], rules: Rules) -> list[Recorded]:
    """Store events and apply their rules in one transaction (a run uses a BounceStore)."""
    store = BounceStore(engine)
    try:
        return store.record(events, rules)
    finally:
        store.close()


def events_for(engine: Engine, email: str) -> list[EventRow]:
    """Every bounce and complaint of an address, oldest first."""
    e = bounce_events.c
    stmt = (
        select(e.occurred_at, e.kind, campaigns.c.key, e.status, e.diagnostic, e.source, e.identified, e.action)
        .outerjoin(campaigns, campaigns.c.id == e.campaign_id)
        .where(e.email == email.lower())
        .order_by(e.occurred_at, e.id)
    )
    with engine.connect() as conn:
        return [EventRow(r[0], BounceKind(r[1]), r[2] or "", *r[3:]) for r in conn.execute(stmt)]


@dataclass(frozen=True)
class CampaignBounces:
    """Addresses that bounced (hard, soft, either) or complained about one campaign."""

    hard: int = 0
    soft: int = 0
    bounced: int = 0
    complained: int = 0


def campaign_counts(engine: Engine, campaign_ids: Sequence[int]) -> dict[int, CampaignBounces]:
    """Campaign id -> its bounce and complaint counts (distinct addresses); campaigns with none are left out."""
    e = bounce_events.c
    bounced = func.count(func.distinct(case((e.kind != BounceKind.COMPLAINT, e.email))))
    stmt = (
        select(
            e.campaign_id,
            func.count(func.distinct(case((e.kind == BounceKind.HARD, e.email)))),
            func.count(func.distinct(case((e.kind == BounceKind.SOFT, e.email)))),
            bounced,
            func.count(func.distinct(case((e.kind == BounceKind.COMPLAINT, e.email)))),
        )
        .where(e.campaign_id.in_(list(campaign_ids)))
        .group_by(e.campaign_id)
    )
    with engine.connect() as conn:
        return {row[0]: CampaignBounces(*(int(n) for n in row[1:])) for row in conn.execute(stmt)}
