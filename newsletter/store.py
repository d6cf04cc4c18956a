"""Campaign state: campaigns, one delivery row per subscriber, and the per-campaign send lock.

Everything a resumed send needs lives in these rows (address, name, CSV columns as JSON), so a
resume never depends on what a killed process held in memory. SQLAlchemy Core throughout; the
upserts use SQLite's dialect (PostgreSQL has the same ON CONFLICT syntax in its own dialect).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert

from .db import metadata, utcnow
from .errors import NewsletterError
from .journal import Outcome
from .subscribers import Subscriber
from .suppressions import suppressions

PENDING, SENT, DEFERRED, FAILED, SKIPPED = "pending", "sent", "deferred", "failed", "skipped"
# Campaign status: "sending" until no row is pending or deferred, then "finished".
# "superseded": the issue was edited after a partial send and a newer campaign took over.
SENDING, FINISHED, SUPERSEDED = "sending", "finished", "superseded"

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String, nullable=False),  # issue key: article slug or digest period
    Column("content_hash", String, nullable=False),
    Column("round", Integer, nullable=False, default=1),  # 2, 3... after --resend
    Column("subject", String, nullable=False, default=""),
    Column("title", String, nullable=False, default=""),
    Column("status", String, nullable=False, default=SENDING),
    Column("runs", Integer, nullable=False, default=0),  # send runs so far (resumes included)
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    UniqueConstraint("key", "content_hash", "round", name="uq_campaign_identity"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("email_key", String, nullable=False),  # lower-cased, the identity
    Column("email", String, nullable=False),  # as written in the list
    Column("name", String, nullable=False, default=""),
    Column("fields", Text, nullable=False, default="{}"),  # every CSV column, JSON
    Column("line", Integer, nullable=False, default=0),
    Column("status", String, nullable=False, default=PENDING),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_reply", String, nullable=False, default=""),
    Column("seen_run", Integer, nullable=False, default=0),  # last run whose list had this address
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    UniqueConstraint("campaign_id", "email_key", name="uq_delivery_address"),
)
Index("ix_deliveries_campaign_status", deliveries.c.campaign_id, deliveries.c.status, deliveries.c.id)

campaign_locks = Table(
    "campaign_locks",
    metadata,
    Column("key", String, primary_key=True),  # issue key: one sender per issue, whatever its hash
    Column("owner", String, nullable=False),  # "<host>:<pid>:<random>"
    Column("host", String, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
)

LOCK_STALE_AFTER = dt.timedelta(seconds=60)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # the text form SQLAlchemy's SQLite DateTime reads back


class CampaignLocked(NewsletterError):
    """Another live process holds the campaign's lock."""


@dataclass(frozen=True)
class CampaignRow:
    id: int
    key: str
    content_hash: str
    round: int
    subject: str
    title: str
    status: str
    runs: int
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def message_key(self) -> str:
        """What Message-IDs derive from: the same across resumes, new for each --resend round."""
        base = f"{self.key}:{self.content_hash}"
        return base if self.round == 1 else f"{base}:r{self.round}"


class PendingRow(NamedTuple):
    """A row still to send, as a page read returns it (a tuple: one is made per message)."""

    id: int
    email: str
    name: str
    fields: str
    line: int
    attempts: int

    def subscriber(self) -> Subscriber:
        return Subscriber(email=self.email, name=self.name, fields=json.loads(self.fields), line=self.line)


def _campaign(row: Any) -> CampaignRow:
    return CampaignRow(**{c: row._mapping[c] for c in CampaignRow.__dataclass_fields__})


# --- campaigns -------------------------------------------------------------------------------


def campaigns_for(engine: Engine, key: str | None = None) -> list[CampaignRow]:
    """Campaigns, newest first; only those of one issue key when given."""
    stmt = select(campaigns).order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc())
    if key is not None:
        stmt = stmt.where(campaigns.c.key == key)
    with engine.connect() as conn:
        return [_campaign(r) for r in conn.execute(stmt)]


def latest_campaign(engine: Engine, key: str, content_hash: str) -> CampaignRow | None:
    stmt = (
        select(campaigns)
        .where(campaigns.c.key == key, campaigns.c.content_hash == content_hash)
        .order_by(campaigns.c.round.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    return _campaign(row) if row else None


def unfinished_other_versions(engine: Engine, key: str, content_hash: str) -> list[CampaignRow]:
    """Partial sends of an earlier version of the same issue (the issue was edited since)."""
    stmt = select(campaigns).where(
        campaigns.c.key == key, campaigns.c.content_hash != content_hash, campaigns.c.status == SENDING
    )
    with engine.connect() as conn:
        return [_campaign(r) for r in conn.execute(stmt)]


def finished_campaign(engine: Engine, key: str) -> CampaignRow | None:
    """The latest campaign of this issue key that finished, whatever version (content hash) it sent."""
    stmt = (
        select(campaigns)
        .where(campaigns.c.key == key, campaigns.c.status == FINISHED)
        .order_by(campaigns.c.finished_at.desc(), campaigns.c.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    return _campaign(row) if row else None


def other_version_ids(engine: Engine, key: str, content_hash: str) -> list[int]:
    """Campaigns of earlier (or later) versions of the same issue, whatever their status."""
    stmt = select(campaigns.c.id).where(campaigns.c.key == key, campaigns.c.content_hash != content_hash)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def is_finished(engine: Engine, key: str) -> bool:
    """Whether any campaign of this issue key has finished (the digest scheduler asks this)."""
    stmt = select(func.count()).select_from(campaigns).where(campaigns.c.key == key, campaigns.c.status == FINISHED)
    with engine.connect() as conn:
        return bool(conn.execute(stmt).scalar())


def create_campaign(engine: Engine, key: str, content_hash: str, round_: int, subject: str, title: str) -> CampaignRow:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(campaigns)
            .values(
                key=key,
                content_hash=content_hash,
                round=round_,
                subject=subject,
                title=title,
                status=SENDING,
                runs=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
    found = latest_campaign(engine, key, content_hash)
    assert found is not None
    return found


def begin_run(engine: Engine, campaign_id: int) -> int:
    """Count a new run; returns its number (rows seen in the list during this run get it)."""
    with engine.begin() as conn:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(runs=campaigns.c.runs + 1, updated_at=utcnow(), status=SENDING, finished_at=None)
        )
        return int(conn.execute(select(campaigns.c.runs).where(campaigns.c.id == campaign_id)).scalar_one())


def set_status(engine: Engine, campaign_id: int, status: str) -> None:
    now = utcnow()
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == FINISHED:
        values["finished_at"] = now
    with engine.begin() as conn:
        conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))


def finish_if_complete(engine: Engine, campaign_id: int) -> bool:
    """Mark finished when no row is pending or deferred; True when it is."""
    counts = status_counts(engine, campaign_id)
    if counts.get(PENDING, 0) or counts.get(DEFERRED, 0):
        set_status(engine, campaign_id, SENDING)
        return False
    set_status(engine, campaign_id, FINISHED)
    return True


# --- deliveries ------------------------------------------------------------------------------


def add_subscribers(
    engine: Engine, campaign_id: int, run: int, subscribers: Iterable[Subscriber], batch: int = 5000
) -> int:
    """Stream the list into delivery rows: new addresses become pending, known ones are marked seen.

    Insert-or-update in batches, so a resume picks up addresses added to the list since, and
    memory stays flat whatever the list's size. Returns the number of listed addresses. On SQLite
    this is plain SQL on one DBAPI connection (Core's per-row parameter processing cost about as
    much as validating the list).
    """
    now = utcnow()
    total = 0
    rows: list[tuple[Any, ...]] = []
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        stamp = now.strftime(_SQLITE_TIME)

        def flush() -> None:
            cursor = raw.cursor()
            try:
                cursor.executemany(_UPSERT_SQL, rows)
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                cursor.close()
            rows.clear()

        try:
            for sub in subscribers:
                email = sub.email
                rows.append(
                    (campaign_id, email.lower(), email, sub.name, dumps(sub.fields), sub.line, run, stamp, stamp)
                )
                total += 1
                if len(rows) >= batch:
                    flush()
            if rows:
                flush()
        finally:
            raw.close()
        return total
    base = insert(deliveries)
    stmt = base.on_conflict_do_update(
        index_elements=["campaign_id", "email_key"],
        set_={"seen_run": base.excluded.seen_run, "name": base.excluded.name, "fields": base.excluded.fields},
    )
    names = ("campaign_id", "email_key", "email", "name", "fields", "line", "seen_run", "created_at", "updated_at")

    def flush_core() -> None:
        with engine.begin() as conn:
            conn.execute(stmt, [dict(zip(names, r, strict=True), status=PENDING) for r in rows])
        rows.clear()

    for sub in subscribers:
        rows.append((campaign_id, sub.email.lower(), sub.email, sub.name, dumps(sub.fields), sub.line, run, now, now))
        total += 1
        if len(rows) >= batch:
            flush_core()
    if rows:
        flush_core()
    return total


_UPSERT_SQL = (
    "INSERT INTO deliveries (campaign_id, email_key, email, name, fields, line, status, attempts, last_reply,"
    " seen_run, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, '', ?, ?, ?)"
    " ON CONFLICT (campaign_id, email_key) DO UPDATE SET seen_run = excluded.seen_run, name = excluded.name,"
    " fields = excluded.fields"
)


def skip_unlisted_and_suppressed(engine: Engine, campaign_id: int, run: int) -> None:
    """Rows still to send whose address left the list, or is suppressed, are skipped (never sent)."""
    open_rows = and_(deliveries.c.campaign_id == campaign_id, deliveries.c.status.in_([PENDING, DEFERRED]))
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(open_rows, deliveries.c.seen_run != run)
            .values(status=SKIPPED, last_reply="no longer on the list", updated_at=now)
        )
        conn.execute(
            update(deliveries)
            .where(open_rows, deliveries.c.email_key.in_(select(suppressions.c.email)))
            .values(status=SKIPPED, last_reply="suppressed", updated_at=now)
        )


def skip_already_received(engine: Engine, campaign_id: int, key: str, content_hash: str) -> int:
    """After an edit: addresses that got any other version of the issue are skipped in this campaign.

    Every other version counts, whatever its status: after two edits, the first version's
    campaign is superseded but its recipients must still not get a second copy.
    """
    other = select(campaigns.c.id).where(campaigns.c.key == key, campaigns.c.content_hash != content_hash)
    received = select(deliveries.c.email_key).where(deliveries.c.campaign_id.in_(other), deliveries.c.status == SENT)
    with engine.begin() as conn:
        return conn.execute(
            update(deliveries)
            .where(
                deliveries.c.campaign_id == campaign_id,
                deliveries.c.status.in_([PENDING, DEFERRED]),
                deliveries.c.email_key.in_(received),
            )
            .values(status=SKIPPED, last_reply="received an earlier version", updated_at=utcnow())
        ).rowcount


def sent_count(engine: Engine, campaign_ids: Sequence[int]) -> int:
    stmt = select(func.count()).where(deliveries.c.campaign_id.in_(list(campaign_ids)), deliveries.c.status == SENT)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def sent_addresses(engine: Engine, campaign_id: int) -> Iterator[str]:
    """Lower-cased addresses already sent in a campaign (dry runs)."""
    stmt = select(deliveries.c.email_key).where(deliveries.c.campaign_id == campaign_id, deliveries.c.status == SENT)
    with engine.connect() as conn:
        yield from conn.execute(stmt).scalars()


def rows_by_id(engine: Engine, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """id -> (status, lower-cased address) for the given delivery rows (to overlay a journal on counts)."""
    wanted = list(ids)
    found: dict[int, tuple[str, str]] = {}
    d = deliveries.c
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            for ident, status, email in conn.execute(select(d.id, d.status, d.email_key).where(d.id.in_(chunk))):
                found[ident] = (status, email)
    return found


def pending_page(engine: Engine, campaign_id: int, after_id: int, limit: int = 500) -> list[PendingRow]:
    """The next page of rows to send (pending or deferred by an earlier run), in id order."""
    d = deliveries.c
    stmt = (
        select(d.id, d.email, d.name, d.fields, d.line, d.attempts)
        .where(d.campaign_id == campaign_id, d.status.in_([PENDING, DEFERRED]), d.id > after_id)
        .order_by(d.id)
        .limit(limit)
    )
    if engine.dialect.name == "sqlite":  # the send path: skip Core's per-row result processing
        raw = engine.raw_connection()
        try:
            found = raw.cursor().execute(_PAGE_SQL, (campaign_id, after_id, limit)).fetchall()
        finally:
            raw.close()
        return [PendingRow(*r) for r in found]
    with engine.connect() as conn:
        return [PendingRow(*r) for r in conn.execute(stmt)]


_PAGE_SQL = (
    "SELECT id, email, name, fields, line, attempts FROM deliveries"
    " WHERE campaign_id = ? AND status IN ('pending', 'deferred') AND id > ? ORDER BY id LIMIT ?"
)


_record = (
    update(deliveries)
    .where(deliveries.c.id == bindparam("_id"))
    .values(
        status=bindparam("_status"),
        last_reply=bindparam("_reply"),
        attempts=bindparam("_attempts"),
        updated_at=bindparam("_at"),
    )
)
_record_sent = _record.values(sent_at=bindparam("_at"))


def _last_per_row(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """A row retried within one batch keeps its last outcome (values are absolute, not increments)."""
    return list({o.delivery_id: o for o in outcomes}.values())


def record_outcomes(engine: Engine, outcomes: Sequence[Outcome], campaign_key: str) -> None:
    """One transaction for a batch of outcomes, suppressions included (SQLAlchemy Core: any database)."""
    latest = _last_per_row(outcomes)
    params = [
        {"_id": o.delivery_id, "_status": o.status, "_reply": o.reply[:500], "_attempts": o.attempts, "_at": o.when}
        for o in latest
    ]
    sent = [p for p in params if p["_status"] == SENT]
    other = [p for p in params if p["_status"] != SENT]
    bounced = [o for o in latest if o.suppress]
    with engine.begin() as conn:
        if sent:
            conn.execute(_record_sent, sent)
        if other:
            conn.execute(_record, other)
        if bounced:
            emails = dict(
                conn.execute(
                    select(deliveries.c.id, deliveries.c.email_key).where(
                        deliveries.c.id.in_([o.delivery_id for o in bounced])
                    )
                ).all()
            )
            conn.execute(
                insert(suppressions).on_conflict_do_nothing(index_elements=["email"]),
                [
                    {
                        "email": emails[o.delivery_id],
                        "reason": "bounced",
                        "detail": f"{campaign_key}: {o.reply[:300]}",
                        "created_at": o.when,
                    }
                    for o in bounced
                    if o.delivery_id in emails
                ],
            )


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
    """Folds journal batches into the state database: plain SQL on one DBAPI connection for SQLite.

    SQLAlchemy Core's per-statement overhead (about 100 µs here) is worth avoiding on the send
    path; other databases go through `record_outcomes` (Core).
    """

    _SENT = (
        "UPDATE deliveries SET status = 'sent', last_reply = ?, attempts = ?, updated_at = ?, sent_at = ? WHERE id = ?"
    )
    _OTHER = "UPDATE deliveries SET status = ?, last_reply = ?, attempts = ?, updated_at = ? WHERE id = ?"
    _SUPPRESS = (
        "INSERT OR IGNORE INTO suppressions (email, reason, detail, created_at)"
        " SELECT email_key, 'bounced', ?, ? FROM deliveries WHERE id = ?"
    )

    def __init__(self, engine: Engine, campaign_key: str) -> None:
        self.engine = engine
        self.campaign_key = campaign_key
        self.raw = engine.raw_connection() if engine.dialect.name == "sqlite" else None

    def __call__(self, outcomes: Sequence[Outcome]) -> None:
        self.record(outcomes)

    def record(self, outcomes: Sequence[Outcome]) -> None:
        if self.raw is None:
            record_outcomes(self.engine, outcomes, self.campaign_key)
            return
        latest = _last_per_row(outcomes)
        rows = list(zip(latest, _sqlite_times(latest), strict=True))
        cursor = self.raw.cursor()
        try:
            sent = [(o.reply[:500], o.attempts, at, at, o.delivery_id) for o, at in rows if o.status == SENT]
            if sent:
                cursor.executemany(self._SENT, sent)
            other = [(o.status, o.reply[:500], o.attempts, at, o.delivery_id) for o, at in rows if o.status != SENT]
            if other:
                cursor.executemany(self._OTHER, other)
            bounced = [(f"{self.campaign_key}: {o.reply[:300]}", at, o.delivery_id) for o, at in rows if o.suppress]
            if bounced:
                cursor.executemany(self._SUPPRESS, bounced)
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


def undo_run_failures(engine: Engine, campaign_id: int, campaign_key: str, since: dt.datetime) -> int:
    """After a systemic stop: this run's permanent failures go back to deferred, unsuppressed.

    A relay that refuses everything with 550 says nothing about the addresses, so they must not
    end up on the suppression list. Returns how many were restored.
    """
    d = deliveries.c
    failed_now = and_(d.campaign_id == campaign_id, d.status == FAILED, d.updated_at >= since)
    with engine.begin() as conn:
        emails = list(conn.execute(select(d.email_key).where(failed_now)).scalars())
        for start in range(0, len(emails), 500):
            chunk = emails[start : start + 500]
            conn.execute(
                delete(suppressions).where(
                    suppressions.c.email.in_(chunk),
                    suppressions.c.created_at >= since,
                    suppressions.c.detail.like(f"{campaign_key}: %"),
                )
            )
        conn.execute(update(deliveries).where(failed_now).values(status=DEFERRED))
    return len(emails)


def status_counts(engine: Engine, campaign_id: int) -> dict[str, int]:
    stmt = (
        select(deliveries.c.status, func.count())
        .where(deliveries.c.campaign_id == campaign_id)
        .group_by(deliveries.c.status)
    )
    with engine.connect() as conn:
        return {status: int(n) for status, n in conn.execute(stmt)}


def last_errors(engine: Engine, campaign_id: int, limit: int = 5) -> list[tuple[str, str, str]]:
    """(email, status, reply) of the most recent failed or deferred rows."""
    d = deliveries.c
    stmt = (
        select(d.email, d.status, d.last_reply)
        .where(d.campaign_id == campaign_id, d.status.in_([FAILED, DEFERRED]), d.last_reply != "")
        .order_by(d.updated_at.desc(), d.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [(e, s, r) for e, s, r in conn.execute(stmt)]


def sent_since(engine: Engine, since: dt.datetime) -> list[dt.datetime]:
    """Send times (any campaign) after `since`: seeds the hourly cap so a rerun keeps the quota."""
    stmt = select(deliveries.c.sent_at).where(deliveries.c.sent_at > since).order_by(deliveries.c.sent_at)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


# --- the send lock ---------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(engine: Engine, key: str, owner: str) -> None:
    """Take the issue's send lock, atomically; a dead or silent holder's lock is taken over.

    The insert-or-ignore and the compare-and-swap take-over are single statements, so two
    processes racing for the same key cannot both win.
    """
    host = socket.gethostname()
    pid = os.getpid()
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(campaign_locks)
            .values(key=key, owner=owner, host=host, pid=pid, acquired_at=now, heartbeat_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = conn.execute(select(campaign_locks).where(campaign_locks.c.key == key)).one()
    if row.owner == owner:
        return
    stale = now - row.heartbeat_at > LOCK_STALE_AFTER or (row.host == host and not _pid_alive(row.pid))
    if stale:
        with engine.begin() as conn:
            taken = conn.execute(
                update(campaign_locks)
                .where(campaign_locks.c.key == key, campaign_locks.c.owner == row.owner)
                .values(owner=owner, host=host, pid=pid, acquired_at=now, heartbeat_at=now)
            ).rowcount
        if taken:
            return
        with engine.connect() as conn:
            row = conn.execute(select(campaign_locks).where(campaign_locks.c.key == key)).one()
    where = f"pid {row.pid}" + ("" if row.host == host else f" on {row.host}")
    raise CampaignLocked(
        f"campaign {key} is being sent by {where} (since {row.acquired_at:%Y-%m-%d %H:%M:%S} UTC); "
        f"wait for it to finish or stop it, then run send again (a lock silent for "
        f"{int(LOCK_STALE_AFTER.total_seconds())} s is taken over)"
    )


def heartbeat(engine: Engine, key: str, owner: str) -> bool:
    """Refresh the lock; False when it was lost (taken over as stale)."""
    with engine.begin() as conn:
        return (
            conn.execute(
                update(campaign_locks)
                .where(campaign_locks.c.key == key, campaign_locks.c.owner == owner)
                .values(heartbeat_at=utcnow())
            ).rowcount
            > 0
        )


def release_lock(engine: Engine, key: str, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(campaign_locks).where(campaign_locks.c.key == key, campaign_locks.c.owner == owner))


def lock_holder(engine: Engine, key: str) -> tuple[str, int] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(campaign_locks.c.host, campaign_locks.c.pid).where(campaign_locks.c.key == key)
        ).first()
    return (row[0], int(row[1])) if row else None
