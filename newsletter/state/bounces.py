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

from sqlalchemy import Connection, Engine, case, func, select

from ..config import format_duration
from .engine import insert, utcnow
from .schema import bounce_events, campaigns, deliveries, suppressions
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


def _message_key(key: str, content_hash: str, round_: int) -> str:
    """The same as CampaignRow.message_key."""
    base = f"{key}:{content_hash}"
    return base if round_ == 1 else f"{base}:r{round_}"


_MAILED = select(
    deliveries.c.id,
    deliveries.c.campaign_id,
    campaigns.c.key,
    campaigns.c.content_hash,
    campaigns.c.round,
    deliveries.c.email_key,
    deliveries.c.status,
).join(campaigns, campaigns.c.id == deliveries.c.campaign_id)


def _mailed(row: Any) -> Mailed:
    ident, campaign_id, key, content_hash, round_, email, status = row
    return Mailed(ident, campaign_id, key, _message_key(key, content_hash, round_), email, DeliveryStatus(status))


def delivery(engine: Engine, delivery_id: int) -> Mailed | None:
    """The delivery row a VERP token names."""
    with engine.connect() as conn:
        row = conn.execute(_MAILED.where(deliveries.c.id == delivery_id)).first()
    return _mailed(row) if row else None


def mailed(engine: Engine, email: str, limit: int = 50) -> list[Mailed]:
    """The campaigns that sent a message to `email`, newest first (empty: we never mailed it)."""
    stmt = (
        _MAILED.where(deliveries.c.email_key == email.lower(), deliveries.c.status == DeliveryStatus.SENT)
        .order_by(deliveries.c.sent_at.desc(), deliveries.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [_mailed(row) for row in conn.execute(stmt)]


def _suppress(conn: Connection, email: str, reason: SuppressionReason, detail: str, now: dt.datetime) -> str:
    """Suppress (a bounce or complaint also replaces an unsubscribe); returns the reason now in force."""
    detail = detail[:MAX_TEXT]
    stmt = insert(conn.engine, suppressions).values(email=email, reason=reason, detail=detail, created_at=now)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["email"],
            set_={"reason": reason, "detail": detail, "created_at": now},
            where=suppressions.c.reason == SuppressionReason.UNSUBSCRIBED,
        )
    )
    return str(conn.execute(select(suppressions.c.reason).where(suppressions.c.email == email)).scalar_one())


def _soft_count(conn: Connection, event: NewEvent, window: dt.timedelta) -> int:
    """The most soft bounces of this address in any `window` around this one, one per campaign."""
    e = bounce_events.c
    rows = conn.execute(
        select(e.id, e.campaign_id, e.occurred_at).where(
            e.email == event.email,
            e.kind == BounceKind.SOFT,
            e.occurred_at >= event.occurred_at - window,
            e.occurred_at <= event.occurred_at + window,
        )
    ).all()
    first: dict[object, dt.datetime] = {}  # one per campaign (its earliest); reports of no campaign each count
    for ident, campaign_id, at in rows:
        key = campaign_id if campaign_id is not None else f"event-{ident}"
        first[key] = min(at, first.get(key, at))
    times = sorted(first.values())
    best = 0
    start = 0
    for end, at in enumerate(times):
        while at - times[start] > window:
            start += 1
        best = max(best, end - start + 1)
    return best


def _apply(conn: Connection, event: NewEvent, rules: Rules, now: dt.datetime) -> Recorded:
    about = f", {event.about}" if event.about else ""
    if event.kind == BounceKind.COMPLAINT:
        reason, detail = SuppressionReason.COMPLAINED, f"bounce report: complaint ({event.status}){about}"
    elif event.kind == BounceKind.HARD:
        reason, detail = SuppressionReason.BOUNCED, f"bounce report: hard bounce {event.status}{about}"
    else:
        count = _soft_count(conn, event, rules.soft_window)
        within = format_duration(rules.soft_window)
        if count < rules.soft_limit:
            return Recorded(True, f"{count} of {rules.soft_limit} soft bounces within {within}")
        reason = SuppressionReason.BOUNCED
        detail = f"bounce report: {count} soft bounces within {within}, the last {event.status}{about}"
    existing = conn.execute(select(suppressions.c.reason).where(suppressions.c.email == event.email)).scalar()
    in_force = _suppress(conn, event.email, reason, detail, now)
    if existing is not None and in_force == existing:
        return Recorded(True, f"already suppressed ({existing})")
    return Recorded(True, f"suppressed as {in_force}", suppressed=True)


def record(engine: Engine, events: Sequence[NewEvent], rules: Rules) -> list[Recorded]:
    """Store each event and apply its rule, all in one transaction; one Recorded per event, in order."""
    now = utcnow()
    results: list[Recorded] = []
    with engine.begin() as conn:
        for event in events:
            values = {
                "email": event.email.lower(),
                "kind": event.kind,
                "campaign_id": event.campaign_id,
                "status": event.status[:40],
                "diagnostic": event.diagnostic[:MAX_TEXT],
                "source": event.source,
                "identified": event.identified,
                "action": "",
                "message_key": event.message_key,
                "occurred_at": event.occurred_at,
                "recorded_at": now,
            }
            stmt = insert(engine, bounce_events).values(**values).on_conflict_do_nothing()
            ident = conn.execute(stmt.returning(bounce_events.c.id)).scalar()
            if ident is None:
                results.append(Recorded(False, "already counted"))
                continue
            done = _apply(conn, event, rules, now)
            conn.execute(bounce_events.update().where(bounce_events.c.id == ident).values(action=done.action))
            results.append(done)
    return results


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
