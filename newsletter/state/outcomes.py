"""Recording what happened to each message: batches of outcomes in one transaction, plain SQL.

One recorder for both databases. On SQLite the send folds its outcome journal into it every couple
of seconds; on PostgreSQL the send commits each small group of outcomes before the connections that
produced them send anything else (group commit: the database is the journal there).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Engine

from .engine import SQLITE_TIME, dbapi_sql, is_sqlite
from .statuses import DeliveryStatus

_EPOCH = dt.datetime(1970, 1, 1)


class Outcome(NamedTuple):
    """The result of one attempt on one delivery row, as the state database records it.

    A NamedTuple, not a dataclass: one is made per message on the send path, and a tuple is cheaper.
    """

    delivery_id: int
    status: DeliveryStatus  # sent, failed or deferred
    attempts: int  # absolute: the row's attempts after this one
    at: float  # Unix time of the outcome (sent_at / updated_at)
    reply: str
    suppress: bool = False  # a permanent refusal of the mailbox: add the address to the suppressions

    @property
    def when(self) -> dt.datetime:
        """Naive UTC, as the state database stores times."""
        whole = int(self.at)
        return _EPOCH + dt.timedelta(seconds=whole, microseconds=int((self.at - whole) * 1_000_000))


def _last_per_row(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """A row retried within one batch keeps its last outcome (values are absolute, not increments)."""
    return list({o.delivery_id: o for o in outcomes}.values())


def _sqlite_times(outcomes: Sequence[Outcome]) -> list[str]:
    """Outcome times as SQLite DateTime text; the date part formatted once per second, not per row."""
    seconds: dict[int, str] = {}
    times = []
    for o in outcomes:
        whole = int(o.at)
        text = seconds.get(whole)
        if text is None:
            text = seconds[whole] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole))
        times.append(f"{text}.{int((o.at - whole) * 1_000_000):06d}")
    return times


_SENT = "UPDATE deliveries SET status = 'sent', last_reply = ?, attempts = ?, updated_at = ?, sent_at = ? WHERE id = ?"
_OTHER = "UPDATE deliveries SET status = ?, last_reply = ?, attempts = ?, updated_at = ? WHERE id = ?"
_SUPPRESS = (
    "INSERT INTO suppressions (email, reason, detail, created_at)"
    " SELECT email_key, 'bounced', ?, ? FROM deliveries WHERE id = ? ON CONFLICT (email) DO NOTHING"
)


def _statements(
    engine: Engine, campaign_key: str, outcomes: Sequence[Outcome]
) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """The batch as (SQL, rows) pairs: sent rows, other rows, and the suppressions they imply."""
    latest = _last_per_row(outcomes)
    stamps: Sequence[Any] = _sqlite_times(latest) if is_sqlite(engine) else [o.when for o in latest]
    rows = list(zip(latest, stamps, strict=True))
    sent = [(o.reply[:500], o.attempts, at, at, o.delivery_id) for o, at in rows if o.status == "sent"]
    other = [(str(o.status), o.reply[:500], o.attempts, at, o.delivery_id) for o, at in rows if o.status != "sent"]
    bounced = [(f"{campaign_key}: {o.reply[:300]}", at, o.delivery_id) for o, at in rows if o.suppress]
    pairs = ((_SENT, sent), (_OTHER, other), (_SUPPRESS, bounced))
    return [(dbapi_sql(engine, sql), params) for sql, params in pairs if params]


class OutcomeRecorder:
    """Writes batches of outcomes (and the suppressions they imply) on one DBAPI connection of its own."""

    def __init__(self, engine: Engine, campaign_key: str) -> None:
        self.engine = engine
        self.campaign_key = campaign_key
        self.raw: Any = engine.raw_connection()

    def __call__(self, outcomes: Sequence[Outcome]) -> None:
        self.record(outcomes)

    def record(self, outcomes: Sequence[Outcome]) -> None:
        cursor = self.raw.cursor()
        try:
            for sql, params in _statements(self.engine, self.campaign_key, outcomes):
                cursor.executemany(sql, params)
            self.raw.commit()
        except BaseException:
            self.raw.rollback()
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
            self.raw = None


# PostgreSQL: a whole batch as one statement (a data-modifying CTE) on an autocommit connection: one
# round trip instead of a statement, then a COMMIT, per batch. Half the latency a connection waits.
_PG_ROW = "(%s::integer, %s, %s, %s::integer, %s::timestamp, %s::boolean, %s)"
_PG_BATCH = (
    "WITH v(id, status, reply, attempts, at, suppress, detail) AS (VALUES {rows}),"
    " upd AS (UPDATE deliveries AS d SET status = v.status, last_reply = v.reply, attempts = v.attempts,"
    " updated_at = v.at, sent_at = CASE WHEN v.status = 'sent' THEN v.at ELSE d.sent_at END"
    " FROM v WHERE d.id = v.id RETURNING d.id)"
    " INSERT INTO suppressions (email, reason, detail, created_at)"
    " SELECT d.email_key, 'bounced', v.detail, v.at FROM v JOIN deliveries AS d ON d.id = v.id WHERE v.suppress"
    " ON CONFLICT (email) DO NOTHING"
)
_PG_CHUNK = 1000  # rows per statement (7 parameters each; PostgreSQL allows 65,535)


class AsyncOutcomeRecorder:
    """PostgreSQL during a send: each batch in one statement, on a connection of the send's own event loop.

    A recorder thread would wait for the GIL behind the busy event loop (up to the 5 ms switch
    interval per commit); on the loop, a batch costs one round trip.
    """

    def __init__(self, campaign_key: str, conn: Any) -> None:
        self.campaign_key = campaign_key
        self.conn = conn

    @classmethod
    async def connect(cls, engine: Engine, campaign_key: str) -> AsyncOutcomeRecorder:
        import psycopg

        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(campaign_key, await psycopg.AsyncConnection.connect(url, autocommit=True))

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        latest = _last_per_row(outcomes)
        for start in range(0, len(latest), _PG_CHUNK):
            chunk = latest[start : start + _PG_CHUNK]
            params: list[Any] = []
            for o in chunk:
                detail = f"{self.campaign_key}: {o.reply[:300]}" if o.suppress else ""
                params += [o.delivery_id, str(o.status), o.reply[:500], o.attempts, o.when, o.suppress, detail]
            await self.conn.execute(_PG_BATCH.format(rows=", ".join([_PG_ROW] * len(chunk))), params)

    async def close(self) -> None:
        await self.conn.close()


__all__ = ["SQLITE_TIME", "AsyncOutcomeRecorder", "Outcome", "OutcomeRecorder"]
