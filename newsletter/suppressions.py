"""The suppression list: addresses that must never be mailed again (unsubscribed, bounced, complained).

It lives in the state database and always wins over the CSV, so a re-exported list cannot bring back
someone who left.
"""

from __future__ import annotations

from typing import Literal, get_args

from sqlalchemy import Column, DateTime, Engine, String, Table, delete, func, select
from sqlalchemy.dialects.sqlite import insert

from .db import metadata, utcnow

Reason = Literal["unsubscribed", "bounced", "complained"]
REASONS: tuple[str, ...] = get_args(Reason)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email", String, primary_key=True),  # lower-cased
    Column("reason", String, nullable=False),
    Column("detail", String, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
)


def suppress(engine: Engine, email: str, reason: Reason, detail: str = "") -> None:
    """Idempotent: the first reason and time are kept."""
    stmt = insert(suppressions).values(email=email.lower(), reason=reason, detail=detail, created_at=utcnow())
    with engine.begin() as conn:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["email"]))


def unsuppress(engine: Engine, email: str, only_reason: Reason | None = None) -> bool:
    """Remove the suppression (resubscribe); with `only_reason`, only when it was for that reason
    (the web page may undo an unsubscribe, never a bounce or a complaint). True when one was removed."""
    stmt = delete(suppressions).where(suppressions.c.email == email.lower())
    if only_reason is not None:
        stmt = stmt.where(suppressions.c.reason == only_reason)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount > 0


def reason_for(engine: Engine, email: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(suppressions.c.reason).where(suppressions.c.email == email.lower())).scalar()


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


def all_suppressions(engine: Engine) -> list[tuple[str, str, str]]:
    """(email, reason, detail) in address order."""
    c = suppressions.c
    with engine.connect() as conn:
        return [(e, r, d) for e, r, d in conn.execute(select(c.email, c.reason, c.detail).order_by(c.email))]
