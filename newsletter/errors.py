"""User-facing errors: the CLI prints them as one line and exits with their status, never a traceback."""

from __future__ import annotations


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


class DeliveryError(NewsletterError):
    """The backend cannot deliver at all (connection refused, bad credentials, unwritable outbox)."""

    exit_code = 1
