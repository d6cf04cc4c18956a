"""Cross-field checks that types alone cannot express, run once when the configuration is loaded."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from ..errors import ConfigError
from .schedule import SUBJECT_VARIABLES
from .sections import Config


def validate(config: Config, where: str, *, state_from_file: bool) -> None:
    _newsletter(config, where)
    _state(config, where, state_from_file)
    for section, port in (("smtp", config.smtp.port), ("preview", config.preview.port), ("serve", config.serve.port)):
        if not 1 <= port <= 65535:
            raise ConfigError(f"{where}: [{section}] port: {port} is not a TCP port (1-65535)")
    smtp = config.smtp
    if smtp.connections < 1:
        raise ConfigError(f"{where}: [smtp] connections: must be at least 1")
    if smtp.rate < 0 or smtp.max_per_hour < 0:
        raise ConfigError(f"{where}: [smtp] rate and max_per_hour must be 0 (unlimited) or more")
    if smtp.max_attempts < 1:
        raise ConfigError(f"{where}: [smtp] max_attempts: must be at least 1")
    if not 0 < smtp.max_failure_ratio <= 1:
        raise ConfigError(f"{where}: [smtp] max_failure_ratio: must be above 0 and at most 1")
    _schedule(config, where)
    _signup(config, where)


def _newsletter(config: Config, where: str) -> None:
    nl = config.newsletter
    if "@" not in nl.from_address or any(c in nl.from_ for c in "\r\n"):
        raise ConfigError(
            f'{where}: [newsletter] from: {nl.from_!r} is not an address; use "Name <you@yourdomain.org>"'
        )
    if nl.base_url and not nl.base_url.startswith(("https://", "http://")):
        raise ConfigError(f"{where}: [newsletter] base_url: {nl.base_url!r} must start with https://")
    # These reach headers (From, List-Id, Reply-To, List-Unsubscribe, Message-ID) as they are.
    for key in ("name", "from_", "reply_to", "list_id", "unsubscribe_mailto", "base_url"):
        value: str = getattr(nl, key)
        if "\r" in value or "\n" in value:
            raise ConfigError(f"{where}: [newsletter] {key.rstrip('_')}: contains a line break; remove it")
    for key, value in (
        ("base_url", nl.base_url),
        ("unsubscribe_mailto", nl.unsubscribe_mailto),
        ("list_id", nl.list_id),
        ("from", nl.from_address),
    ):
        if value and (not value.isascii() or any(c.isspace() for c in value)):
            raise ConfigError(
                f"{where}: [newsletter] {key}: {value!r} must be plain ASCII without spaces; write an international "
                f"domain in its xn-- form and percent-encode other characters"
            )


def _state(config: Config, where: str, from_file: bool) -> None:
    """A file path, or a postgresql:// URL; a URL with a password only from the environment."""
    state = config.paths.state
    if not state:
        raise ConfigError(f"{where}: [paths] state: must be a file path or a postgresql:// URL")
    if not config.state_is_url:
        return
    parts = urlsplit(state)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"{where}: [paths] state: {parts.scheme}:// is not supported; use a file path (SQLite) "
            f"or a postgresql://user@host/dbname URL"
        )
    if parts.password and from_file:
        raise ConfigError(
            f"{where}: [paths] state: the URL holds a password, and secrets are not read from files; remove it "
            f"and set NEWSLETTER_PATHS_STATE (or PGPASSWORD, or ~/.pgpass)"
        )


def _schedule(config: Config, where: str) -> None:
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    section = config.schedule
    if section.lookback <= dt.timedelta(0):
        raise ConfigError(f"{where}: [schedule] lookback: must be more than 0, e.g. 7d")
    try:  # a typo fails now, at start, rather than at next Monday's run
        section.subject.render(newsletter=config.newsletter, week=48, year=2026, period="2026-W48", articles=())
    except (TemplateError, SecurityError) as exc:
        raise ConfigError(f"{where}: [schedule] subject: {exc}; the template may use {SUBJECT_VARIABLES}") from None


def _signup(config: Config, where: str) -> None:
    signup = config.signup
    for key in ("confirm_expiry", "mail_interval", "rate_window"):
        if getattr(signup, key) <= dt.timedelta(0):
            raise ConfigError(f"{where}: [signup] {key}: must be more than 0, e.g. 1h or 7d")
    if signup.rate_limit < 0:
        raise ConfigError(f"{where}: [signup] rate_limit: must be 0 (unlimited) or more")
