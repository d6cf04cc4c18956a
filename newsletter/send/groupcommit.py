"""Outcomes committed to PostgreSQL in small groups, each before its connection sends anything else.

With a shared database the journal file cannot be the record: a send killed on one machine may be
resumed on another, and the journal would be lost with the first. So each connection waits for its
outcome's commit before taking its next message, and one committer task writes whatever has
gathered meanwhile in one transaction (with N connections, up to N outcomes a commit).
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import Engine

from ..errors import StateError, one_line
from ..state.outcomes import AsyncOutcomeRecorder, Outcome


class GroupCommit:
    def __init__(self, engine: Engine, campaign_key: str) -> None:
        self.engine = engine
        self.campaign_key = campaign_key
        self.recorder: AsyncOutcomeRecorder | None = None
        self.commits = 0
        self._batch: list[Outcome] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def append(self, outcome: Outcome) -> asyncio.Future[None]:
        """Queue the outcome; the future completes once it is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append(outcome)
        self._waiters.append(future)
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, waiters = self._batch, self._waiters
            self._batch, self._waiters = [], []
            if batch:
                try:
                    if self.recorder is None:
                        self.recorder = await AsyncOutcomeRecorder.connect(self.engine, self.campaign_key)
                    await self.recorder.record(batch)
                except Exception as exc:
                    error = StateError(f"cannot record deliveries in the state database ({one_line(exc)})")
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(error)
                else:
                    self.commits += 1
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_result(None)
            if not self._batch:
                self._idle.set()

    async def close(self) -> None:
        """Wait for the last commit, then stop the committer."""
        await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.recorder is not None:
            await self.recorder.close()
            self.recorder = None
