"""The suppression list: addresses that must never be mailed again (unsubscribed, bounced, complained).

It lives in the state database and always wins over the CSV, so a re-exported list cannot bring back
someone who left.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import Column, DateTime, Engine, String, Table, delete, select
from sqlalchemy.dialects.sqlite import insert

from .db import metadata, utcnow

Reason = Literal["unsubscribed", "bounced", "complained"]

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


def unsuppress(engine: Engine, email: str) -> bool:
    with engine.begin() as conn:
        return conn.execute(delete(suppressions).where(suppressions.c.email == email.lower())).rowcount > 0


def reason_for(engine: Engine, email: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(suppressions.c.reason).where(suppressions.c.email == email.lower())).scalar()


def suppressed_addresses(engine: Engine) -> set[str]:
    """All suppressed addresses (lower-case); small next to the list, read once per send."""
    with engine.connect() as conn:
        return set(conn.execute(select(suppressions.c.email)).scalars())
