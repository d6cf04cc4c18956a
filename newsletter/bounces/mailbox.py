"""Where bounces are read from: one interface for an IMAP mailbox and a local Maildir.

A mailbox yields raw messages with a reference (an IMAP UID, a Maildir file name) and, once their
events are committed, moves them to the processed folder; a message never moved is seen again by
the next run, which finds its report already counted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from ..config import Config
from ..errors import MailboxError
from .message import Incoming


class Mailbox(Protocol):
    def describe(self) -> str: ...

    def messages(self) -> Iterator[tuple[str, Incoming]]:
        """Every message waiting (reference, raw message), read at most MAX_BYTES each."""

    def done(self, refs: Sequence[str]) -> None:
        """Move these messages to the processed folder (made when missing)."""

    def close(self) -> None: ...


def open_mailbox(config: Config) -> Mailbox:
    """The configured mailbox, connected (and logged in); a MailboxError, one line, when it cannot be."""
    section = config.bounces
    if section.imap_host:
        from .imap import ImapMailbox

        return ImapMailbox.connect(config)
    if section.maildir:
        from .maildir import MaildirMailbox

        return MaildirMailbox.open(config)
    raise MailboxError(
        f"{config.where}: no bounce mailbox is configured; set [bounces] imap_host (with imap_user) or "
        f"[bounces] maildir, or feed messages to `newsletter bounces receive`"
    )
