"""What the scheduler decided for each article's own send_at: sent, already sent, or missed.

Keyed by the article and its send_at, so editing send_at to a new time schedules a new send; the
campaign store still sends an article to each subscriber once, whatever its send_at said.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from .digests import naive_utc
from .engine import insert, utcnow
from .schema import scheduled_sends
from .statuses import RunDecision


def record_scheduled(engine: Engine, slug: str, send_at: dt.datetime, decision: RunDecision) -> None:
    stmt = insert(engine, scheduled_sends).values(
        slug=slug, send_at=naive_utc(send_at), decision=decision, decided_at=utcnow()
    )
    with engine.begin() as conn:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["slug", "send_at"]))


def scheduled_decisions(engine: Engine) -> dict[tuple[str, dt.datetime], RunDecision]:
    """(slug, send_at as naive UTC) -> the decision taken for it."""
    with engine.connect() as conn:
        rows = conn.execute(select(scheduled_sends.c.slug, scheduled_sends.c.send_at, scheduled_sends.c.decision))
        return {(r.slug, r.send_at): RunDecision(r.decision) for r in rows}
