"""The pool's queue: fresh messages and retries that are due, taken in turn.

A retry whose backoff is over joined the end of one FIFO queue before, behind up to 2,000 fresh
messages: against a slow or stalling relay its second attempt came only after the whole queue. Here
due retries wait in their own line and the connections take one from each line in turn, so a retry
goes out as soon as it is due without starving the rest of the list. The sentinels that close the
workers (None) come out only after every message.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pool import Job


class JobQueue(asyncio.Queue["Job | None"]):
    """asyncio.Queue with the stdlib's subclass hooks (as PriorityQueue): fresh jobs, due retries, closers."""

    def _init(self, maxsize: int) -> None:
        self._queue: deque[Job | None] = deque()  # fresh jobs, in list order
        self._due: deque[Job] = deque()  # retries whose backoff is over
        self._closers = 0
        self._retry_next = True

    def _put(self, item: Job | None) -> None:
        if item is None:
            self._closers += 1
        elif item.attempts:
            self._due.append(item)
        else:
            self._queue.append(item)

    def _get(self) -> Job | None:
        fresh, due = self._queue, self._due
        if due and (self._retry_next or not fresh):
            self._retry_next = False
            return due.popleft()
        if fresh:
            self._retry_next = True
            return fresh.popleft()
        self._closers -= 1
        return None

    def qsize(self) -> int:
        return len(self._queue) + len(self._due) + self._closers

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return False
