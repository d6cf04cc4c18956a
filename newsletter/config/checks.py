"""Checks that types alone cannot express, run once when the configuration is loaded.

Each error names where the value came from: the file's `[section] key`, or the environment variable
that overrode it (the file may not even have the key).
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from ..errors import ConfigError
from .schedule import SUBJECT_VARIABLES, sample_subject_values
from .sections import VERP_TOKEN_MAX_LENGTH, Config

# C0 and C1 control characters, DEL and the Unicode line and paragraph separators: none may reach a header.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# RFC 2919 list-id: dot-atoms, at least two of them.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LIST_ID = re.compile(rf"{_ATOM}(?:\.{_ATOM})+")
MAX_TIMEOUT = 3600.0  # an hour per SMTP command
MAX_RETRY_DELAY = 600.0  # the backoff's own cap
_HEADER_OF = {"from": "From", "reply_to": "Reply-To", "sample_email": "To"}


class Keys:
    """Names a setting for an error: `newsletter.toml: [smtp] timeout`, or the variable that set it."""

    def __init__(self, where: str, from_env: set[tuple[str, str]] | None = None) -> None:
        self.where = where
        self.from_env = from_env or set()

    def __call__(self, section: str, key: str) -> str:
        if (section, key) in self.from_env:
            return f"environment variable NEWSLETTER_{section.upper()}_{key.upper()}"
        return f"{self.where}: [{section}] {key}"


def validate(config: Config, keys: Keys, *, state_from_file: bool) -> None:
    _newsletter(config, keys)
    _state(config, keys, state_from_file)
    for section, port in (("smtp", config.smtp.port), ("preview", config.preview.port), ("serve", config.serve.port)):
        if not 1 <= port <= 65535:
            raise ConfigError(f"{keys(section, 'port')}: {port} is not a TCP port (1-65535)")
    _smtp(config, keys)
    _schedule(config, keys)
    _dkim(config, keys)
    _bounces(config, keys)
    _signup(config, keys)
    _feed(config, keys)


def _smtp(config: Config, keys: Keys) -> None:
    smtp = config.smtp
    if not 0 < smtp.timeout <= MAX_TIMEOUT:
        raise ConfigError(
            f"{keys('smtp', 'timeout')}: {smtp.timeout:g} is not a timeout; give seconds above 0, e.g. 30"
        )
    if not 0 < smtp.retry_base_delay <= MAX_RETRY_DELAY:
        raise ConfigError(
            f"{keys('smtp', 'retry_base_delay')}: {smtp.retry_base_delay:g} is not a delay; give seconds above 0 and "
            f"at most {MAX_RETRY_DELAY:g}, e.g. 2"
        )
    if smtp.connections < 1:
        raise ConfigError(f"{keys('smtp', 'connections')}: must be at least 1")
    if config.delivery.stream_from < 1:
        raise ConfigError(f"{keys('delivery', 'stream_from')}: must be at least 1 (a number of CSV lines)")
    for key in ("rate", "max_per_hour"):
        if getattr(smtp, key) < 0:
            raise ConfigError(f"{keys('smtp', key)}: must be 0 (unlimited) or more")
    if smtp.max_attempts < 1:
        raise ConfigError(f"{keys('smtp', 'max_attempts')}: must be at least 1")
    if not 0 < smtp.max_failure_ratio <= 1:
        raise ConfigError(f"{keys('smtp', 'max_failure_ratio')}: must be above 0 and at most 1")
    for key in ("host", "username"):
        if CONTROL.search(getattr(smtp, key)):
            raise ConfigError(f"{keys('smtp', key)}: contains a line break or control character; remove it")
    plaintext = smtp.security == "none" and smtp.username and not smtp.allow_plaintext_auth
    if plaintext and config.delivery.backend == "smtp":
        raise ConfigError(
            f'{keys("smtp", "security")}: "none" with a username would send the password in clear; use "starttls" '
            f'or "tls", or set [smtp] allow_plaintext_auth = true (a relay on this machine only)'
        )


def _dkim(config: Config, keys: Keys) -> None:
    """All of domain, selector and key_file, or none of them."""
    dkim = config.dkim
    given = {"domain": bool(dkim.domain), "selector": bool(dkim.selector), "key_file": bool(dkim.key_file)}
    if any(given.values()) and not all(given.values()):
        missing = ", ".join(k for k, v in given.items() if not v)
        raise ConfigError(f"{keys.where}: [dkim]: {missing} missing; DKIM signing needs domain, selector and key_file")
    for key in ("domain", "selector"):
        value = getattr(dkim, key)
        if value and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ConfigError(f"{keys('dkim', key)}: {value!r} is not a DNS name; write it like example.org")


def _one_address(value: str, keys: Keys, key: str) -> None:
    """Exactly one well-formed address, with or without a display name: it becomes a header as it is."""
    from email.policy import default

    header = default.header_factory(_HEADER_OF[key], value)
    addresses = header.addresses
    spec = addresses[0].addr_spec if len(addresses) == 1 else ""
    local, _at, domain = spec.rpartition("@")
    if len(addresses) > 1:
        problem = f"{value!r} names {len(addresses)} addresses"
    elif header.defects or not local or not domain or spec.startswith('"'):
        problem = f"{value!r} is not an address"
    else:
        return
    raise ConfigError(f'{keys("newsletter", key)}: {problem}; write one address like "Name <you@yourdomain.org>"')


def _newsletter(config: Config, keys: Keys) -> None:
    nl = config.newsletter
    # These reach headers (From, To, List-Id, Reply-To, List-Unsubscribe, Message-ID) as they are.
    header_bound = ("name", "from_", "reply_to", "list_id", "unsubscribe_mailto", "base_url", "sample_email")
    for key in (*header_bound, "sample_name"):
        value: str = getattr(nl, key)
        if CONTROL.search(value):
            what = "a line break" if "\r" in value or "\n" in value else "a control character"
            raise ConfigError(f"{keys('newsletter', key.rstrip('_'))}: contains {what}; remove it")
    _one_address(nl.from_, keys, "from")
    for key in ("reply_to", "sample_email"):
        if getattr(nl, key):
            _one_address(getattr(nl, key), keys, key)
    for key, value in (
        ("base_url", nl.base_url),
        ("unsubscribe_mailto", nl.unsubscribe_mailto),
        ("list_id", nl.list_id),
        ("from", nl.from_address),
    ):
        if value and (not value.isascii() or any(c.isspace() for c in value)):
            raise ConfigError(
                f"{keys('newsletter', key)}: {value!r} must be plain ASCII without spaces; write an international "
                f"domain in its xn-- form and percent-encode other characters"
            )
        if any(c in value for c in '<>"'):  # each is written between < and > in a header
            raise ConfigError(f"{keys('newsletter', key)}: {value!r} contains < > or \"; remove them")
    if nl.base_url and (not nl.base_url.startswith(("https://", "http://")) or not urlsplit(nl.base_url).hostname):
        raise ConfigError(
            f"{keys('newsletter', 'base_url')}: {nl.base_url!r} must be an https:// URL like https://news.example.org"
        )
    if nl.list_id and not LIST_ID.fullmatch(nl.list_id):
        raise ConfigError(
            f"{keys('newsletter', 'list_id')}: {nl.list_id!r} is not a list id (RFC 2919); write it like "
            f"news.example.org"
        )
    if nl.unsubscribe_mailto and "@" not in nl.unsubscribe_mailto:
        raise ConfigError(
            f"{keys('newsletter', 'unsubscribe_mailto')}: {nl.unsubscribe_mailto!r} has no address; write it like "
            f"unsubscribe@example.org"
        )


def _state(config: Config, keys: Keys, from_file: bool) -> None:
    """A file path, or a postgresql:// URL; a URL with a password only from the environment."""
    state = config.paths.state
    if not state:
        raise ConfigError(f"{keys('paths', 'state')}: must be a file path or a postgresql:// URL")
    if not config.state_is_url:
        return
    parts = urlsplit(state)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"{keys('paths', 'state')}: {parts.scheme}:// is not supported; use a file path (SQLite) "
            f"or a postgresql://user@host/dbname URL"
        )
    if parts.password and from_file:
        raise ConfigError(
            f"{keys('paths', 'state')}: the URL holds a password, and secrets are not read from files; remove it "
            f"and set NEWSLETTER_PATHS_STATE (or PGPASSWORD, or ~/.pgpass)"
        )


def _schedule(config: Config, keys: Keys) -> None:
    from jinja2 import TemplateError
    from jinja2.exceptions import SecurityError

    section = config.schedule
    if section.lookback <= dt.timedelta(0):
        raise ConfigError(f"{keys('schedule', 'lookback')}: must be more than 0, e.g. 7d")
    if dt.timedelta(0) < section.every < dt.timedelta(minutes=1):
        raise ConfigError(f"{keys('schedule', 'every')}: must be 0 (every cron run) or at least 1m, e.g. 2w")
    try:  # a typo fails now, at start, rather than at next Monday's run
        section.subject.render(newsletter=config.newsletter, **sample_subject_values())
    except SecurityError as exc:
        reason = str(exc).rstrip(".")
        raise ConfigError(
            f"{keys('schedule', 'subject')}: refused by the template sandbox ({reason}); the template may use "
            f"{SUBJECT_VARIABLES}"
        ) from None
    except TemplateError as exc:
        raise ConfigError(f"{keys('schedule', 'subject')}: {exc}; the template may use {SUBJECT_VARIABLES}") from None


def _bounces(config: Config, keys: Keys) -> None:
    """The bounce address becomes every envelope sender; the mailbox is one IMAP account or one Maildir."""
    section = config.bounces
    for key in ("address", "imap_host", "imap_user", "imap_folder", "maildir", "processed_folder"):
        value: str = getattr(section, key)
        if CONTROL.search(value):
            raise ConfigError(f"{keys('bounces', key)}: contains a line break or control character; remove it")
    if section.address:
        local, at, domain = section.address.rpartition("@")
        longest = 64 - 1 - VERP_TOKEN_MAX_LENGTH
        if not at or not local or "." not in domain or not section.address.isascii() or " " in section.address:
            raise ConfigError(
                f"{keys('bounces', 'address')}: {section.address!r} is not a plain address; "
                f'use "bounces@yourdomain.org"'
            )
        if len(local) > longest or "<" in section.address or ">" in section.address:
            raise ConfigError(
                f"{keys('bounces', 'address')}: the part before @ ({local!r}) leaves no room for the "
                f"{VERP_TOKEN_MAX_LENGTH}-character token within SMTP's 64; use at most {longest} characters"
            )
    if section.imap_host and section.maildir:
        raise ConfigError(f"{keys.where}: [bounces] imap_host and maildir are both set; read bounces from one of them")
    if section.imap_host and not section.imap_user:
        raise ConfigError(f"{keys('bounces', 'imap_user')}: empty but imap_host is set; give the mailbox's login")
    if not 0 <= section.imap_port <= 65535:
        raise ConfigError(f"{keys('bounces', 'imap_port')}: {section.imap_port} is not a TCP port (1-65535, or 0)")
    if not section.processed_folder.strip() or section.processed_folder == section.imap_folder:
        raise ConfigError(
            f"{keys('bounces', 'processed_folder')}: must name a folder other than imap_folder "
            f"({section.imap_folder!r})"
        )
    if section.soft_limit < 1:
        raise ConfigError(f"{keys('bounces', 'soft_limit')}: must be at least 1")
    if section.soft_window <= dt.timedelta(0):
        raise ConfigError(f"{keys('bounces', 'soft_window')}: must be more than 0, e.g. 30d")


def _signup(config: Config, keys: Keys) -> None:
    signup = config.signup
    for key in ("confirm_expiry", "mail_interval", "rate_window"):
        if getattr(signup, key) <= dt.timedelta(0):
            raise ConfigError(f"{keys('signup', key)}: must be more than 0, e.g. 1h or 7d")
    if signup.rate_limit < 0:
        raise ConfigError(f"{keys('signup', 'rate_limit')}: must be 0 (unlimited) or more")


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


def _feed(config: Config, keys: Keys) -> None:
    feed = config.feed
    problem = feed_url_problem(feed.url) if feed.url else ""
    if problem:
        raise ConfigError(f"{keys('feed', 'url')}: {problem}")
    if feed.timeout <= 0:
        raise ConfigError(f"{keys('feed', 'timeout')}: must be more than 0 seconds, e.g. 30")
    if feed.max_size_mb <= 0:
        raise ConfigError(f"{keys('feed', 'max_size_mb')}: must be more than 0, e.g. 10")
    if dt.timedelta(0) < feed.interval < dt.timedelta(minutes=1):
        raise ConfigError(f"{keys('feed', 'interval')}: must be 0 (only before each run) or at least 1m, e.g. 1h")
