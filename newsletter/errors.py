"""Every exception the package raises on purpose: the CLI prints each as one line with its exit status.

A `NewsletterError` is a problem the user can fix; `str()` is the whole message, one line, naming the
file, key or line and what to do. Library text that spans lines never gets in (`one_line`).
"""

from __future__ import annotations

from typing import Any


def one_line(text: object) -> str:
    """The first line of a library's message, without SQLAlchemy's URL footer and the like."""
    first = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return first.removeprefix("(sqlite3.OperationalError) ").removeprefix("(sqlite3.DatabaseError) ")


class NewsletterError(Exception):
    """A problem the user can fix (bad input, bad config). `str()` is the whole message."""

    exit_code = 2


class ConfigError(NewsletterError):
    """A wrong key, type or value in newsletter.toml or a NEWSLETTER_* variable."""


class ContentError(NewsletterError):
    """An article that cannot be loaded: front matter, dates, missing file."""


class TemplateProblem(NewsletterError):
    """A template that fails to compile or render: names the template file and line."""


class HeaderInjectionError(NewsletterError):
    """A CR or LF in something that would become a mail header."""


class StateError(NewsletterError):
    """The state database cannot be opened, upgraded or written."""

    exit_code = 1


class DeliveryError(NewsletterError):
    """The transport cannot deliver at all (connection refused, bad credentials, unwritable outbox)."""

    exit_code = 1


class Locked(NewsletterError):
    """Another live process holds the lock (a campaign being sent, the digest being worked on)."""


class AlreadySent(NewsletterError):
    """The campaign finished before; sending again needs --resend."""


class CampaignStopped(NewsletterError):
    """The campaign stopped itself (failure ratio, refused login...); `result` has the run's counts."""

    exit_code = 1

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


class FilesError(NewsletterError):
    """A file or folder cannot be read or written (a full disk, permissions) where no closer error applies."""

    exit_code = 1


class Declined(NewsletterError):
    """The user answered no (or nothing) at a prompt: nothing was done."""

    exit_code = 1


class MailboxError(NewsletterError):
    """The bounce mailbox cannot be read (IMAP server unreachable, login refused, no such Maildir)."""

    exit_code = 1


class FeedError(NewsletterError):
    """A blog's feed cannot be read: the server fails or times out, it is too large, or it is not a feed."""

    exit_code = 1
