"""The suppression list: addresses that must never be mailed again (unsubscribed, bounced, complained).

It lives in the state database and always wins over the list, so a re-exported list cannot bring
back someone who left.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, delete, func, select

from .engine import insert, utcnow
from .schema import suppressions
from .statuses import SuppressionReason


def suppress(engine: Engine, email: str, reason: SuppressionReason, detail: str = "") -> None:
    """Idempotent: the first reason and time are kept."""
    stmt = insert(engine, suppressions).values(email=email.lower(), reason=reason, detail=detail, created_at=utcnow())
    with engine.begin() as conn:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["email"]))


def unsuppress(engine: Engine, email: str, only_reason: SuppressionReason | None = None) -> bool:
    """Remove the suppression (resubscribe); with `only_reason`, only when it was for that reason
    (the web page may undo an unsubscribe, never a bounce or a complaint). True when one was removed."""
    stmt = delete(suppressions).where(suppressions.c.email == email.lower())
    if only_reason is not None:
        stmt = stmt.where(suppressions.c.reason == only_reason)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount > 0


def reason_for(engine: Engine, email: str) -> SuppressionReason | None:
    with engine.connect() as conn:
        found = conn.execute(select(suppressions.c.reason).where(suppressions.c.email == email.lower())).scalar()
    return SuppressionReason(found) if found else None


def suppressed_addresses(engine: Engine) -> set[str]:
    """All suppressed addresses (lower-case); small next to the list, read once per send."""
    with engine.connect() as conn:
        return set(conn.execute(select(suppressions.c.email)).scalars())


def suppression_reasons(engine: Engine) -> dict[str, str]:
    """Address (lower-case) -> reason, for list and export."""
    with engine.connect() as conn:
        return {email: reason for email, reason in conn.execute(select(suppressions.c.email, suppressions.c.reason))}


def counts_by_reason(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(suppressions.c.reason, func.count()).group_by(suppressions.c.reason))
        return {reason: count for reason, count in rows}


def suppression_of(engine: Engine, email: str) -> tuple[SuppressionReason, str, dt.datetime] | None:
    """(reason, detail, since when) of an address's suppression, or None."""
    s = suppressions.c
    with engine.connect() as conn:
        row = conn.execute(select(s.reason, s.detail, s.created_at).where(s.email == email.lower())).first()
    return (SuppressionReason(row[0]), row[1], row[2]) if row else None
