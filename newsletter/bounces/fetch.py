"""`bounces fetch` and `bounces receive`: a mailbox read in batches, or one message from an MTA's pipe."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from ..config import Config
from .mailbox import open_mailbox
from .message import MAX_BYTES, Incoming
from .process import Examined, Handled, Processor, Summary

BATCH = 100  # messages examined, then recorded in one transaction, then moved


def fetch(config: Config, echo: Callable[[str], None], batch: int = BATCH) -> tuple[str, Summary]:
    """Process every message waiting in the configured mailbox; (the mailbox, what happened)."""
    processor = Processor(config)
    summary = Summary()
    try:
        mailbox = open_mailbox(config)
    except BaseException:
        processor.close()
        raise
    try:
        pending: list[Examined] = []

        def flush() -> None:
            for handled in processor.commit(pending):
                echo(f"{handled.ref}: {handled.line}")
                summary.add(handled)
            mailbox.done([examined.ref for examined in pending])  # only after the commit
            pending.clear()

        for ref, incoming in mailbox.messages():
            pending.append(processor.examine(ref, incoming))
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
        return mailbox.describe(), summary
    finally:
        mailbox.close()
        processor.close()


def read_limited(stream: BinaryIO) -> Incoming:
    """One message from a pipe: the first MAX_BYTES kept, the rest read and dropped (the MTA must not see EPIPE)."""
    data = stream.read(MAX_BYTES + 1)
    truncated = len(data) > MAX_BYTES
    while truncated and stream.read(1 << 20):
        pass
    return Incoming(data[:MAX_BYTES], truncated=truncated)


def receive(config: Config, incoming: Incoming) -> Handled:
    """Process one message (an MTA's pipe): recorded before this returns."""
    processor = Processor(config)
    try:
        (handled,) = processor.commit([processor.examine("stdin", incoming)])
    finally:
        processor.close()
    return handled
