"""One lock for every process that must work alone: a campaign's sender, the digest scheduler.

A row in the `locks` table names its holder (host, pid) and when it last gave a sign of life. A
holder whose process is gone (same host, pid not running) is taken over at once; one silent for
`stale_after` (another host, a hung process) is taken over too. Taking, taking over and renewing are
single statements, so two processes racing for a lock cannot both win.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
import socket
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update

from ..errors import Locked, one_line
from .engine import insert, utcnow
from .schema import locks

STALE_AFTER = dt.timedelta(seconds=60)
log = logging.getLogger("newsletter.state")


def owner_id() -> str:
    """'<host>:<pid>:<random>': unique per holder, readable in `status`."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Holder:
    owner: str
    host: str
    pid: int
    acquired_at: dt.datetime
    heartbeat_at: dt.datetime

    def describe(self) -> str:
        here = socket.gethostname()
        return f"pid {self.pid}" + ("" if self.host == here else f" on {self.host}")


class Lock:
    """A named lock in the state database. Sync `try_acquire`/`renew`/`release`; async `acquire` waits."""

    def __init__(self, engine: Engine, name: str, stale_after: dt.timedelta = STALE_AFTER) -> None:
        self.engine = engine
        self.name = name
        self.stale_after = stale_after
        self.owner = owner_id()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self._renewer: asyncio.Task[None] | None = None

    def holder(self) -> Holder | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(locks).where(locks.c.name == self.name)).first()
        if row is None:
            return None
        return Holder(row.owner, row.host, int(row.pid), row.acquired_at, row.heartbeat_at)

    def _stale(self, holder: Holder, now: dt.datetime) -> bool:
        silent = now - holder.heartbeat_at > self.stale_after
        return silent or (holder.host == self.host and holder.pid != self.pid and not _pid_alive(holder.pid))

    def try_acquire(self) -> bool:
        """Take the lock, or take it over from a dead or silent holder; False when a live one has it."""
        now = utcnow()
        values = {"owner": self.owner, "host": self.host, "pid": self.pid, "acquired_at": now, "heartbeat_at": now}
        with self.engine.begin() as conn:
            conn.execute(insert(self.engine, locks).values(name=self.name, **values).on_conflict_do_nothing())
        holder = self.holder()
        if holder is None or holder.owner == self.owner:
            return holder is not None
        if not self._stale(holder, now):
            return False
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(locks).where(locks.c.name == self.name, locks.c.owner == holder.owner).values(**values)
            ).rowcount
        return bool(taken)

    def acquire_or_raise(self, what: str) -> None:
        """Take the lock now or raise Locked naming the holder; `what` is how the message names the work."""
        if self.try_acquire():
            return
        holder = self.holder()
        who = holder.describe() if holder else "another process"
        since = f" (since {holder.acquired_at:%Y-%m-%d %H:%M:%S} UTC)" if holder else ""
        raise Locked(
            f"{what} is being sent by {who}{since}; wait for it to finish or stop it, then run send again "
            f"(a lock silent for {int(self.stale_after.total_seconds())} s is taken over)"
        )

    def renew(self) -> bool:
        """A sign of life; False when the lock was lost (taken over as stale)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(locks)
                .where(locks.c.name == self.name, locks.c.owner == self.owner)
                .values(heartbeat_at=utcnow())
            )
        return result.rowcount == 1

    def release(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(locks).where(locks.c.name == self.name, locks.c.owner == self.owner))

    async def acquire(self, stop: asyncio.Event | None = None, poll: float = 0.5) -> bool:
        """Wait for the lock (False when `stop` is set first); then keep it renewed until `aclose`."""
        waited = False
        while not await asyncio.to_thread(self.try_acquire):
            if not waited:
                holder = self.holder()
                log.info("another process holds the %s lock (%s); waiting", self.name, holder.owner if holder else "?")
                waited = True
            if stop is not None and stop.is_set():
                return False
            await asyncio.sleep(poll)
        self.keep_renewed()
        return True

    def keep_renewed(self, on_lost: asyncio.Event | None = None) -> None:
        """Renew in the background (a third of stale_after); set `on_lost` if the lock is ever lost."""
        self._renewer = asyncio.get_running_loop().create_task(self._renew_loop(on_lost))

    async def _renew_loop(self, on_lost: asyncio.Event | None) -> None:
        interval = max(self.stale_after.total_seconds() / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            if not await asyncio.to_thread(self.renew):
                log.warning("lost the %s lock (another process took it over)", self.name)
                if on_lost is not None:
                    on_lost.set()
                return

    async def aclose(self, *, failing: bool = False) -> None:
        """Stop renewing and release. `failing`: the work is already raising; a release that fails too
        (the disk that broke the work is full) is logged, not raised over that error, and the lock
        is taken over at once, its process being gone."""
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None
        try:
            await asyncio.to_thread(self.release)
        except Exception as exc:
            if not failing:
                raise
            log.info("could not release the %s lock (%s)", self.name, one_line(exc))
