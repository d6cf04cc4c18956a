"""The sending engine: N transports (connections), each reused for many messages, with retries and backoff.

Throughput comes from several connections, each a task that sends one message at a time; after a
421, a timeout or a dropped connection that task resets its transport and the next message opens
a new one. Every attempt's result (an `Attempt`: sent, transient, permanent or fatal, read by the
transport) is handed to `report`, which must have recorded the outcome durably when it returns, or
return an awaitable that completes once it has (a group commit); only then does the task take its
next message: that is what bounds duplicates after a crash to one message per connection.

Two brakes live here: a relay's own refusal (an attempt of kind RELAY: a quota, a policy) stops the
run at once, and so does a stall, when no message has been delivered for `stall_timeout` seconds
(a relay that takes connections and never finishes a message would otherwise hold the run for
hours). The failure ratios, which need the outcomes, are the sender's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import DeliveryError, NewsletterError
from .jobqueue import JobQueue
from .ratelimit import RateLimiter
from .transport import Attempt, AttemptKind, Transport

BUILD_AHEAD = 16  # messages a connection builds at once (16 x a 10 KB email: 160 KB per connection)


@dataclass(slots=True)
class Job:
    """One message to one recipient; `payload` is whatever `build` needs (a store row)."""

    id: int
    recipient: str
    payload: Any = None
    sender: str = ""  # this message's envelope sender (a VERP address); empty: the pool's
    attempts: int = 0  # attempts in this run
    last: Attempt | None = field(default=None, repr=False)


Report = Callable[[Job, Attempt, bool], Awaitable[None] | None]
# Builds a connection's batch at once, e.g. signing it in another process; an error stands for its job.
BuildBatch = Callable[[list[Job]], Awaitable[list[bytes | NewsletterError]]]


class DeliveryPool:
    """Runs jobs through `size` connections until the jobs run out or `stop` is set.

    `report(job, attempt, final)` is called after every attempt, before the connection takes its
    next message (a plain call: no task switch in between, unless it returns an awaitable, which is
    awaited first); `final` is False when the job will be retried later in this run. A fatal attempt
    stops everything and is kept in `fatal`; a relay's refusal is reported, then stops everything
    and is kept in `relay`; a stall (`stall_timeout` seconds without a delivery, 0: never) sets
    `stalled`.
    """

    def __init__(
        self,
        connect: Callable[[], Transport],
        *,
        size: int,
        sender: str,
        build: Callable[[Job], bytes],
        report: Report,
        limiter: RateLimiter,
        max_attempts: int,
        base_delay: float,
        stop: asyncio.Event,
        capacity: int = 2000,
        build_batch: BuildBatch | None = None,
        stall_timeout: float = 0.0,
    ) -> None:
        self.connect = connect
        self.build_batch = build_batch
        self.size = size
        self.sender = sender
        self.build = build
        self.report = report
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.stop = stop
        self.fatal: NewsletterError | None = None
        self.relay: Attempt | None = None  # the relay's own refusal that paused the run
        self.stall_timeout = stall_timeout
        self.stalled = False
        self.reconnects = 0
        self.live = size  # connections still working: a relay's "421 too many connections" retires one
        self._queue: asyncio.Queue[Job | None] = JobQueue()
        self._progress_at = time.monotonic()  # the last delivery (or the start, or a wait the rate limit chose)
        self._limited = 0  # connections waiting for the rate limiter: a wait it chose is not a stall
        # At most `capacity` jobs in memory (queued or waiting to retry). The feeder refills in bulk
        # once half have finished: a semaphore slot per job woke the feeder task once per message.
        self._capacity = capacity
        self._room = asyncio.Event()
        self._outstanding = 0
        self._fed_all = False
        self._timers: set[asyncio.TimerHandle] = set()
        self._closing = False

    def backoff(self, attempts: int) -> float:
        """Seconds before retry number `attempts` (1, 2, ...): base, 2×base, 4×base... capped at 10 min."""
        return min(600.0, self.base_delay * float(2 ** (attempts - 1)))

    async def run(self, jobs: AsyncIterator[Job]) -> None:
        first = self.connect()
        await first.open()  # a DeliveryError here: nothing can be sent at all
        feeder = asyncio.create_task(self._feed(jobs))
        stopper = asyncio.create_task(self._close_on_stop())
        self._progress_at = time.monotonic()
        watchdog = asyncio.create_task(self._watch_stall()) if self.stall_timeout > 0 else None
        workers = [asyncio.create_task(self._worker(first if i == 0 else self.connect())) for i in range(self.size)]
        try:
            outcomes = await asyncio.gather(*workers, return_exceptions=True)
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            if errors:
                raise errors[0]
        finally:
            feeder.cancel()
            stopper.cancel()
            if watchdog is not None:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
            for timer in self._timers:
                timer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await feeder
            with contextlib.suppress(asyncio.CancelledError):
                await stopper

    async def _feed(self, jobs: AsyncIterator[Job]) -> None:
        async for job in jobs:
            if self._outstanding >= self._capacity:
                self._room.clear()
                await self._room.wait()
            if self.stop.is_set():
                break
            self._outstanding += 1
            self._queue.put_nowait(job)
        self._fed_all = True
        self._maybe_done()

    async def _close_on_stop(self) -> None:
        await self.stop.wait()
        self._close_workers()

    async def _watch_stall(self) -> None:
        """Stop the run when nothing was delivered for `stall_timeout` (messages in flight then time out)."""
        tick = min(1.0, self.stall_timeout / 4)
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), tick)
            now = time.monotonic()
            if self._limited:
                self._progress_at = now
            elif now - self._progress_at > self.stall_timeout and not self.stop.is_set():
                self.stalled = True
                self.stop.set()

    def _close_workers(self) -> None:
        if not self._closing:
            self._closing = True
            for _ in range(self.size):
                self._queue.put_nowait(None)

    def _maybe_done(self) -> None:
        if self._fed_all and self._outstanding == 0:
            self._close_workers()

    def _finish(self) -> None:
        self._outstanding -= 1
        if self._outstanding * 2 <= self._capacity:
            self._room.set()
        self._maybe_done()

    def _requeue(self, job: Job, timer_ref: list[asyncio.TimerHandle]) -> None:
        self._timers.discard(timer_ref[0])
        if self._closing:
            return  # stopping: the row stays deferred in the store, a later run sends it
        self._queue.put_nowait(job)

    def _retry_later(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        ref: list[asyncio.TimerHandle] = []
        ref.append(loop.call_later(self.backoff(job.attempts), self._requeue, job, ref))
        self._timers.add(ref[0])

    def _set_fatal(self, error: NewsletterError) -> None:
        if self.fatal is None:
            self.fatal = error
        self.stop.set()

    async def _worker(self, conn: Transport) -> None:
        try:
            await self._work(conn)
        except BaseException:
            self.stop.set()  # the others finish their message and stop too
            raise
        finally:
            await conn.close()

    def _take(self, first: Job | None) -> tuple[list[Job], bool]:
        """Up to BUILD_AHEAD queued jobs (fewer near the end, so every connection gets some); True at a close."""
        queue = self._queue
        want = max(1, min(BUILD_AHEAD, queue.qsize() // self.live))
        chunk: list[Job] = [] if first is None else [first]
        while len(chunk) < want and queue.qsize():
            job = queue.get_nowait()
            if job is None:
                return chunk, True
            chunk.append(job)
        return chunk, False

    def _build_all(self, chunk: list[Job]) -> list[bytes | NewsletterError]:
        """Build a chunk's messages in one tight loop: interleaved with socket work, each build cost twice as much."""
        built: list[bytes | NewsletterError] = []
        for job in chunk:
            try:
                built.append(self.build(job))
            except NewsletterError as exc:  # e.g. a CR/LF in a name: this row only
                built.append(exc)
        return built

    async def _work(self, conn: Transport) -> None:
        failures_in_row = 0
        queue, stop, limiter, report = self._queue, self.stop, self.limiter, self.report
        limited = not limiter.unlimited
        closing = False
        while not closing:
            first = None
            if not queue.qsize():
                first = await queue.get()
                if first is None:
                    return
            chunk, closing = self._take(first)
            built = await self.build_batch(chunk) if self.build_batch is not None else self._build_all(chunk)
            for index, (job, data) in enumerate(zip(chunk, built, strict=True)):
                if stop.is_set():
                    return  # the rest of the chunk stays pending: never attempted
                if isinstance(data, NewsletterError):
                    pending = report(job, Attempt(AttemptKind.PERMANENT, str(data)), True)
                    if pending is not None:
                        await pending
                    self._finish()
                    continue
                if limited:
                    self._limited += 1
                    try:
                        await limiter.acquire(stop)
                    finally:
                        self._limited -= 1
                    if stop.is_set():
                        return
                attempt = await conn.send(job.sender or self.sender, job.recipient, data)
                job.attempts += 1
                job.last = attempt
                if attempt.kind == AttemptKind.SENT:
                    self._progress_at = time.monotonic()
                elif attempt.kind == AttemptKind.FATAL:
                    self._set_fatal(attempt.error or DeliveryError(attempt.reply))
                    return
                elif attempt.kind == AttemptKind.RELAY:  # recorded (deferred), then the whole run pauses
                    pending = report(job, attempt, True)
                    if pending is not None:
                        await pending
                    self._finish()
                    if self.relay is None:
                        self.relay = attempt
                    stop.set()
                    return
                if attempt.reconnect:
                    await conn.reset()
                    self.reconnects += 1
                    failures_in_row += 1
                else:
                    failures_in_row = 0
                retry = attempt.kind == AttemptKind.TRANSIENT and job.attempts < self.max_attempts and not stop.is_set()
                pending = report(job, attempt, not retry)  # durable before this connection sends anything else
                if pending is not None:
                    await pending
                if retry:
                    self._retry_later(job)
                else:
                    self._finish()
                if attempt.at_connect and attempt.reply.startswith("421") and self.live > 1:
                    # The relay refuses this many connections: this one stops for the rest of the run.
                    self.live -= 1
                    for rest in chunk[index + 1 :]:
                        self._queue.put_nowait(rest)
                    if closing:
                        self._queue.put_nowait(None)
                    return
                if failures_in_row > 1:  # the server keeps dropping us: pause this connection
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.backoff(min(failures_in_row - 1, 6)))
