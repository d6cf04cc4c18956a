"""Progress of a send: a rich bar with rate and ETA on a terminal, plain log lines otherwise.

The campaign calls a Reporter; the CLI picks the kind. Plain lines are throttled (every few
seconds or every tenth of the way) so a 100,000-message log stays readable and cheap.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:  # rich costs about 20 ms to import: only a terminal's bar needs it
    from rich.console import Console


class Reporter(Protocol):
    def start(self, total: int, description: str) -> None: ...

    def advance(self, status: str) -> None: ...

    def note(self, message: str) -> None: ...

    def stop(self) -> None: ...


class SilentReporter:
    """For callers (the scheduler) that only want the final result."""

    def start(self, total: int, description: str) -> None:
        pass

    def advance(self, status: str) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def stop(self) -> None:
        pass


class LogReporter:
    """Plain lines: `sent 1,200/10,000 (312 msg/s, ETA 28s)`, at most every `every` seconds."""

    def __init__(self, out: TextIO | None = None, every: float = 2.0) -> None:
        self.out = out or sys.stderr
        self.every = every
        self.total = 0
        self.done = 0
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()
        self._last = self.started
        self._next_fraction = 0.1

    def start(self, total: int, description: str) -> None:
        self.total, self.done, self.counts = total, 0, {}
        self.started = self._last = time.monotonic()
        self._next_fraction = 0.1
        print(f"{description}: {total:,} to send", file=self.out, flush=True)

    def advance(self, status: str) -> None:
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        now = time.monotonic()
        fraction = self.done / self.total if self.total else 1.0
        if now - self._last >= self.every or fraction >= self._next_fraction:
            self._last = now
            while fraction >= self._next_fraction:
                self._next_fraction += 0.1
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        extra = "".join(f", {n:,} {s}" for s, n in sorted(self.counts.items()) if s != "sent" and n)
        print(
            f"{self.counts.get('sent', 0):,} sent of {self.total:,}{extra} ({rate:,.0f} msg/s, ETA {left:,.0f}s)",
            file=self.out,
            flush=True,
        )

    def note(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def stop(self) -> None:
        pass


class RichReporter:
    """A live bar on the terminal (stderr), with rate and ETA."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} msg/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task: Any = None  # rich's TaskID
        self.started = time.monotonic()
        self.done = 0
        self._last = 0.0

    def start(self, total: int, description: str) -> None:
        self.started = time.monotonic()
        self.task = self.progress.add_task(description, total=total, rate="0")
        self.progress.start()

    def advance(self, status: str) -> None:
        if self.task is None:
            return
        self.done += 1
        now = time.monotonic()
        if now - self._last >= 0.2:  # rich is not free: update a few times a second
            rate = self.done / max(now - self.started, 1e-9)
            self.progress.update(self.task, completed=self.done, rate=f"{rate:,.0f}")
            self._last = now

    def note(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def stop(self) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=self.done)
        self.progress.stop()


def reporter_for(stream: TextIO | None = None) -> Reporter:
    """A bar when the stream is a terminal, plain lines otherwise (logs, CI, pipes)."""
    stream = stream or sys.stderr
    if stream.isatty():
        from rich.console import Console

        return RichReporter(Console(file=stream))
    return LogReporter(stream)
