"""The outcome journal: one appended line per SMTP outcome, folded into the state database in batches.

Committing every outcome to SQLite cost about a quarter of the send rate (a commit per message or
two, plus the asyncio hand-offs to wait for it). Instead, the moment the server has answered, the
connection task writes one short line with `os.write` to an O_APPEND file descriptor, before it
takes its next message. The line is then in the kernel's page cache: it survives the process being
killed (SIGKILL, a crash, the OOM killer), though not a power cut, which is exactly the guarantee the
state database gives with `synchronous=NORMAL`. Every couple of seconds (and at the end) the lines
since the last fold go into SQLite in one transaction and the file is emptied; a run that finds a
journal left by a killed process replays it before anything else (a torn last line is ignored).

Replaying is idempotent: a line carries the absolute attempt count and the time of the outcome, so
applying it twice (killed between the fold's commit and the truncation) writes the same values.

The file lives next to the state database: `<state>.journal-<campaign id>`. It serves SQLite; on
PostgreSQL (shared by several machines, where a file on one of them would be lost with it) the
outcomes are committed in small groups instead (groupcommit.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import FilesError, NewsletterError, StateError, one_line
from ..state.files import open_private
from ..state.outcomes import Outcome
from ..state.statuses import DeliveryStatus

_CODES = {DeliveryStatus.SENT: "s", DeliveryStatus.FAILED: "f", DeliveryStatus.DEFERRED: "d"}
_STATUSES = {v: k for k, v in _CODES.items()}
_CLEAN = str.maketrans({"\t": " ", "\r": " ", "\n": " "})
RESUME = "free disk space (or fix the cause), then run the same send again: it resumes where it stopped"


def journal_path(state: Path, campaign_id: int) -> Path:
    return state.with_name(f"{state.name}.journal-{campaign_id}")


def encode(outcome: Outcome) -> bytes:
    return (
        f"{outcome.delivery_id}\t{_CODES[outcome.status]}\t{outcome.attempts}\t{int(outcome.suppress)}\t"
        f"{outcome.at:.6f}\t{outcome.reply[:500].translate(_CLEAN)}\n"
    ).encode("utf-8", "replace")


def read_journal(path: Path) -> list[Outcome]:
    """The complete lines of a journal, in order; a torn or garbled line (a kill mid-write) is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise NewsletterError(f"{path}: cannot read the send journal ({exc.strerror}); check its permissions") from None
    outcomes = []
    for line in data.split(b"\n")[:-1]:  # whatever follows the last newline is a torn write
        try:
            ident, code, attempts, suppress, at, reply = line.decode("utf-8", "replace").split("\t", 5)
            outcomes.append(Outcome(int(ident), _STATUSES[code], int(attempts), float(at), reply, suppress == "1"))
        except (ValueError, KeyError):
            continue
    return outcomes


Fold = Callable[[Sequence[Outcome]], None]


class Journal:
    """Appends outcomes durably (against a killed process) and folds them into the database in batches.

    `fold(outcomes)` writes a batch in one transaction; it runs every `fold_every` outcomes or
    `fold_after` seconds, on the caller's thread (a database thread was measured slower: the GIL).
    """

    def __init__(self, path: Path, fold: Fold, *, fold_every: int = 5000, fold_after: float = 2.0) -> None:
        self.path = path
        self._fold = fold
        self.fold_every = fold_every
        self.fold_after = fold_after
        self.pending: list[Outcome] = []
        self.folds = 0
        try:
            self.fd: int | None = open_private(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise NewsletterError(
                f"{path}: cannot create the send journal ({exc.strerror}); the folder of [paths] state must be writable"
            ) from None
        self._next_fold = time.monotonic() + fold_after

    def append(self, outcome: Outcome) -> None:
        """Durable when this returns (the line is in the kernel); may fold a batch into the database."""
        assert self.fd is not None, "journal closed"
        line = encode(outcome)
        try:
            written = os.write(self.fd, line)
        except OSError as exc:
            raise FilesError(f"{self.path}: cannot write the send journal ({exc.strerror}); {RESUME}") from None
        if written != len(line):
            raise FilesError(f"{self.path}: cannot write the send journal (disk full?); {RESUME}")
        self.pending.append(outcome)
        if len(self.pending) >= self.fold_every or time.monotonic() >= self._next_fold:
            self.fold()

    def fold(self) -> None:
        """The outcomes since the last fold into the database, then an empty file."""
        self._next_fold = time.monotonic() + self.fold_after
        if not self.pending:
            return
        try:
            self._fold(self.pending)
        except Exception as exc:  # the lines stay in the file: the next run replays them
            reason = one_line(getattr(exc, "orig", None) or exc)
            raise StateError(
                f"{self.path}: cannot record deliveries in the state database ({reason}); the journal keeps them: "
                f"{RESUME}"
            ) from exc
        self.pending = []
        self.folds += 1
        assert self.fd is not None
        os.ftruncate(self.fd, 0)  # O_APPEND: the next line goes to the new end, offset 0

    def close(self) -> None:
        """Fold what is left and remove the file; on a failed fold the file stays for the next run."""
        if self.fd is None:
            return
        self.fold()
        os.close(self.fd)
        self.fd = None
        self.path.unlink(missing_ok=True)

    def abandon(self) -> None:
        """Close without folding (the database is failing): the file keeps every outcome for the next run."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def replay(path: Path, fold: Fold) -> int:
    """Fold a journal left by a killed run, then remove it; returns the outcomes replayed."""
    outcomes = read_journal(path)
    if outcomes:
        try:
            fold(outcomes)
        except Exception as exc:
            raise NewsletterError(
                f"{path}: cannot replay the send journal into the state database ({exc}); nothing was sent"
            ) from exc
    path.unlink(missing_ok=True)
    return len(outcomes)
