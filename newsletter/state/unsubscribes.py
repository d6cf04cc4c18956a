"""Unsubscribes that are never lost: stored within seconds, or kept in a journal until the database takes them.

`serve` answers a one-click POST only once the unsubscribe is durable. It first gives the database a
few seconds (SQLite's busy timeout, PostgreSQL's lock and statement timeouts: another process may
hold the write lock, a file may have been moved away, a server may be down); when that fails it
appends a line to `<state>.unsubscribes` beside the database, fsyncs it, and answers 200 then.
`fold` moves the lines into the suppression list: a send does it before it reads the list, `serve`
at its next request while the database is writable, `db backup` before copying. A line folded twice
changes nothing (the first reason and time are kept). An flock orders the appends and the fold's
rewrite of the file, so a line written while a fold runs stays for the next one; the file is emptied,
never deleted, for the same reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine

from ..config import Config
from .beside import beside_state
from .engine import check_file, insert, is_sqlite, utcnow
from .schema import suppressions
from .statuses import SuppressionReason

_CLEAN = str.maketrans({"\t": " ", "\r": " ", "\n": " "})
DEFAULT_BUSY_MS = 30000  # what every SQLite connection waits otherwise (engine.py)


def journal_path(config: Config) -> Path:
    return beside_state(config, "unsubscribes")


def keep(config: Config, email: str, detail: str, reason: SuppressionReason = SuppressionReason.UNSUBSCRIBED) -> None:
    """Append one unsubscribe to the journal and fsync it: durable when this returns (raises OSError if not)."""
    path = journal_path(config)
    line = f"{utcnow():%Y-%m-%dT%H:%M:%S}\t{reason}\t{email.lower()}\t{detail.translate(_CLEAN)[:300]}\n"
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    if new:  # the file's name must survive a crash too
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def waiting(config: Config) -> bool:
    """Whether the journal holds anything to fold (a stat: cheap enough for every request)."""
    try:
        return journal_path(config).stat().st_size > 0
    except OSError:
        return False


def _parse(data: bytes) -> list[tuple[dt.datetime, SuppressionReason, str, str]]:
    found = []
    for raw in data.split(b"\n")[:-1]:  # a torn last line (a crash mid-write) has no newline
        try:
            when, reason, email, detail = raw.decode("utf-8").split("\t", 3)
            found.append((dt.datetime.fromisoformat(when), SuppressionReason(reason), email, detail))
        except ValueError:
            continue
    return found


def fold(config: Config, engine: Engine) -> int:
    """The journal's unsubscribes into the suppression list; returns how many lines were folded."""
    path = journal_path(config)
    if not waiting(config):
        return 0
    with path.open("rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
        data = fh.read()
    data = data[: data.rfind(b"\n") + 1]
    entries = _parse(data)
    if entries:
        with engine.begin() as conn:
            for when, reason, email, detail in entries:
                values = {"email": email, "reason": reason, "detail": detail, "created_at": when}
                stmt = insert(engine, suppressions).values(**values)
                conn.execute(stmt.on_conflict_do_nothing(index_elements=["email"]))
    with path.open("rb+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        now = fh.read()
        rest = now[len(data) :] if now.startswith(data) else now  # another fold got there first: keep it all
        fh.seek(0)
        fh.truncate()
        fh.write(rest)
        fh.flush()
        os.fsync(fh.fileno())
    return len(entries)


def store(config: Config, engine: Engine, email: str, detail: str, seconds: float) -> None:
    """Suppress `email` as unsubscribed, or raise (StateError, a database error) within about `seconds`."""
    check_file(config, engine)
    stmt = insert(engine, suppressions).values(
        email=email.lower(), reason=SuppressionReason.UNSUBSCRIBED, detail=detail, created_at=utcnow()
    )
    with _waiting_at_most(engine, seconds) as conn:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["email"]))
        conn.commit()


def probe(config: Config, engine: Engine, seconds: float) -> None:
    """Raise unless the database would take a write within `seconds` (the health check)."""
    check_file(config, engine)
    with _waiting_at_most(engine, seconds) as conn:
        if is_sqlite(engine):
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock, as an INSERT needs it
        else:
            conn.exec_driver_sql("LOCK TABLE suppressions IN ROW EXCLUSIVE MODE")  # what an INSERT takes
        conn.rollback()


@contextlib.contextmanager
def _waiting_at_most(engine: Engine, seconds: float) -> Iterator[Connection]:
    """A connection that waits at most `seconds` for a lock (and goes back to the pool as it was)."""
    ms = max(1, int(seconds * 1000))
    with engine.connect() as conn:
        if not is_sqlite(engine):  # for this transaction only
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            yield conn
            return
        conn.exec_driver_sql(f"PRAGMA busy_timeout={ms}")
        try:
            yield conn
        finally:
            try:
                conn.rollback()
                conn.exec_driver_sql(f"PRAGMA busy_timeout={DEFAULT_BUSY_MS}")
            except Exception:
                conn.invalidate()  # never back to the pool with the short wait
