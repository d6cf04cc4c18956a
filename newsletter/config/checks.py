"""Cross-field checks that types alone cannot express, run once when the configuration is loaded."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from ..errors import ConfigError
from .schedule import SUBJECT_VARIABLES, sample_subject_values
from .sections import VERP_TOKEN_MAX_LENGTH, Config


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
    _dkim(config, where)
    _bounces(config, where)
    _signup(config, where)
    _feed(config, where)


def _dkim(config: Config, where: str) -> None:
    """All of domain, selector and key_file, or none of them."""
    dkim = config.dkim
    given = {"domain": bool(dkim.domain), "selector": bool(dkim.selector), "key_file": bool(dkim.key_file)}
    if any(given.values()) and not all(given.values()):
        missing = ", ".join(k for k, v in given.items() if not v)
        raise ConfigError(f"{where}: [dkim]: {missing} missing; DKIM signing needs domain, selector and key_file")
    for key in ("domain", "selector"):
        value = getattr(dkim, key)
        if value and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ConfigError(f"{where}: [dkim] {key}: {value!r} is not a DNS name; write it like example.org")


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
    if dt.timedelta(0) < section.every < dt.timedelta(minutes=1):
        raise ConfigError(f"{where}: [schedule] every: must be 0 (every cron run) or at least 1m, e.g. 2w")
    try:  # a typo fails now, at start, rather than at next Monday's run
        section.subject.render(newsletter=config.newsletter, **sample_subject_values())
    except (TemplateError, SecurityError) as exc:
        raise ConfigError(f"{where}: [schedule] subject: {exc}; the template may use {SUBJECT_VARIABLES}") from None


def _bounces(config: Config, where: str) -> None:
    """The bounce address becomes every envelope sender; the mailbox is one IMAP account or one Maildir."""
    section = config.bounces
    for key in ("address", "imap_host", "imap_user", "imap_folder", "maildir", "processed_folder"):
        value: str = getattr(section, key)
        if any(c in value for c in "\r\n\0"):
            raise ConfigError(f"{where}: [bounces] {key}: contains a line break; remove it")
    if section.address:
        local, at, domain = section.address.rpartition("@")
        longest = 64 - 1 - VERP_TOKEN_MAX_LENGTH
        if not at or not local or "." not in domain or not section.address.isascii() or " " in section.address:
            raise ConfigError(
                f'{where}: [bounces] address: {section.address!r} is not a plain address; use "bounces@yourdomain.org"'
            )
        if len(local) > longest or "<" in section.address or ">" in section.address:
            raise ConfigError(
                f"{where}: [bounces] address: the part before @ ({local!r}) leaves no room for the "
                f"{VERP_TOKEN_MAX_LENGTH}-character token within SMTP's 64; use at most {longest} characters"
            )
    if section.imap_host and section.maildir:
        raise ConfigError(f"{where}: [bounces] imap_host and maildir are both set; read bounces from one of them")
    if section.imap_host and not section.imap_user:
        raise ConfigError(f"{where}: [bounces] imap_user: empty but imap_host is set; give the mailbox's login")
    if not 0 <= section.imap_port <= 65535:
        raise ConfigError(f"{where}: [bounces] imap_port: {section.imap_port} is not a TCP port (1-65535, or 0)")
    if not section.processed_folder.strip() or section.processed_folder == section.imap_folder:
        raise ConfigError(
            f"{where}: [bounces] processed_folder: must name a folder other than imap_folder ({section.imap_folder!r})"
        )
    if section.soft_limit < 1:
        raise ConfigError(f"{where}: [bounces] soft_limit: must be at least 1")
    if section.soft_window <= dt.timedelta(0):
        raise ConfigError(f"{where}: [bounces] soft_window: must be more than 0, e.g. 30d")


def _signup(config: Config, where: str) -> None:
    signup = config.signup
    for key in ("confirm_expiry", "mail_interval", "rate_window"):
        if getattr(signup, key) <= dt.timedelta(0):
            raise ConfigError(f"{where}: [signup] {key}: must be more than 0, e.g. 1h or 7d")
    if signup.rate_limit < 0:
        raise ConfigError(f"{where}: [signup] rate_limit: must be 0 (unlimited) or more")


def feed_url_problem(url: str) -> str:
    """Why a feed address cannot be read ("" when it can): an http(s) URL or a local file, nothing else."""
    if any(c in url for c in "\r\n\0") or url != url.strip():
        return f"{url!r} contains a line break or surrounding spaces; remove them"
    scheme, sep, rest = url.partition("://")
    if not sep:
        return ""  # a local file
    if scheme.lower() not in ("http", "https"):
        return f"{url!r}: {scheme}:// is not read; give an http(s):// URL or the path of a local file"
    host = urlsplit(url).hostname
    if not rest or not host:
        return f"{url!r} names no host; write it like https://blog.example.org/feed/"
    return ""


def _feed(config: Config, where: str) -> None:
    feed = config.feed
    problem = feed_url_problem(feed.url) if feed.url else ""
    if problem:
        raise ConfigError(f"{where}: [feed] url: {problem}")
    if feed.timeout <= 0:
        raise ConfigError(f"{where}: [feed] timeout: must be more than 0 seconds, e.g. 30")
    if feed.max_size_mb <= 0:
        raise ConfigError(f"{where}: [feed] max_size_mb: must be more than 0, e.g. 10")
    if dt.timedelta(0) < feed.interval < dt.timedelta(minutes=1):
        raise ConfigError(f"{where}: [feed] interval: must be 0 (only before each run) or at least 1m, e.g. 1h")
