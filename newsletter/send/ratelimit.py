"""Send-rate limits: a token bucket (`[smtp] rate`, per second) and a sliding hourly cap (`max_per_hour`).

Both reserve a slot synchronously and then sleep until it, so any number of connection tasks
share one limiter without a lock and can never exceed it together. The bucket holds one token
by default (no burst): a relay quota of 14/s then holds over every window, not only on average.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Iterable


class TokenBucket:
    """`rate` tokens per second, at most `capacity` saved up (GCRA, the virtual-scheduling form)."""

    def __init__(self, rate: float, capacity: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.clock = clock
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._tat = 0.0  # theoretical arrival time of the next token

    def reserve(self, now: float) -> float:
        """The earliest time at or after `now` a message may go; the slot is taken."""
        if self.interval == 0.0:
            return now
        tat = max(self._tat, now)
        slot = max(now, tat - (self.capacity - 1) * self.interval)
        self._tat = tat + self.interval
        return slot


class HourlyCap:
    """At most `limit` sends in any 3,600 s window (a sliding window of send times)."""

    WINDOW = 3600.0

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self._times: collections.deque[float] = collections.deque(maxlen=limit if limit > 0 else 1)

    def seed(self, ages: Iterable[float]) -> None:
        """Sends that already happened, as seconds ago (from the state database), oldest first."""
        now = self.clock()
        for age in ages:
            if self.limit > 0 and age < self.WINDOW:
                self._times.append(now - age)

    def earliest(self, now: float) -> float:
        if self.limit <= 0 or len(self._times) < self.limit:
            return now
        return max(now, self._times[0] + self.WINDOW)

    def record(self, slot: float) -> None:
        if self.limit > 0:
            self._times.append(max(slot, self._times[-1]) if self._times else slot)


class RateLimiter:
    """Both limits together; `await acquire()` before each message (each attempt) is sent."""

    def __init__(self, rate: float, max_per_hour: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.bucket = TokenBucket(rate, clock=clock)
        self.hourly = HourlyCap(max_per_hour, clock=clock)

    @property
    def unlimited(self) -> bool:
        return self.bucket.interval == 0.0 and self.hourly.limit <= 0

    def reserve(self) -> float:
        """Seconds to wait before sending; the slot is taken now (no await in between)."""
        now = self.clock()
        slot = self.bucket.reserve(self.hourly.earliest(now))
        self.hourly.record(slot)
        return slot - now

    async def acquire(self, stop: asyncio.Event | None = None) -> None:
        """Wait for a slot; returns early when `stop` is set (an hourly cap can mean a long wait)."""
        if self.unlimited:
            return
        delay = self.reserve()
        if delay <= 0:
            return
        if stop is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
