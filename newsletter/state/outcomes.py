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


class OutcomeRecorder:
    """Writes batches of outcomes (and the suppressions they imply) on one DBAPI connection of its own."""

    _SENT = (
        "UPDATE deliveries SET status = 'sent', last_reply = ?, attempts = ?, updated_at = ?, sent_at = ? WHERE id = ?"
    )
    _OTHER = "UPDATE deliveries SET status = ?, last_reply = ?, attempts = ?, updated_at = ? WHERE id = ?"
    _SUPPRESS = (
        "INSERT INTO suppressions (email, reason, detail, created_at)"
        " SELECT email_key, 'bounced', ?, ? FROM deliveries WHERE id = ? ON CONFLICT (email) DO NOTHING"
    )

    def __init__(self, engine: Engine, campaign_key: str) -> None:
        self.engine = engine
        self.campaign_key = campaign_key
        self.sqlite = is_sqlite(engine)
        self.raw: Any = engine.raw_connection()
        self.sql_sent, self.sql_other, self.sql_suppress = (
            dbapi_sql(engine, s) for s in (self._SENT, self._OTHER, self._SUPPRESS)
        )

    def __call__(self, outcomes: Sequence[Outcome]) -> None:
        self.record(outcomes)

    def record(self, outcomes: Sequence[Outcome]) -> None:
        latest = _last_per_row(outcomes)
        stamps: Sequence[Any] = _sqlite_times(latest) if self.sqlite else [o.when for o in latest]
        rows = list(zip(latest, stamps, strict=True))
        cursor = self.raw.cursor()
        try:
            sent = [(o.reply[:500], o.attempts, at, at, o.delivery_id) for o, at in rows if o.status == "sent"]
            if sent:
                cursor.executemany(self.sql_sent, sent)
            other = [
                (str(o.status), o.reply[:500], o.attempts, at, o.delivery_id) for o, at in rows if o.status != "sent"
            ]
            if other:
                cursor.executemany(self.sql_other, other)
            bounced = [(f"{self.campaign_key}: {o.reply[:300]}", at, o.delivery_id) for o, at in rows if o.suppress]
            if bounced:
                cursor.executemany(self.sql_suppress, bounced)
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


__all__ = ["SQLITE_TIME", "Outcome", "OutcomeRecorder"]
