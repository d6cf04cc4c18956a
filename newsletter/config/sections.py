"""The typed sections of newsletter.toml, with their built-in defaults.

Every value here is already parsed: paths are Paths, durations timedeltas, the time zone a tzinfo,
the crontab a validated `CronExpr`, the digest subject a compiled sandboxed template. Nothing later
parses a setting again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

from .schedule import DEFAULT_SUBJECT, CronExpr, SubjectTemplate, local_zone


@dataclass(frozen=True)
class NewsletterSection:
    name: str = "Privacy Notes"
    # One or two sentences for the landing page, the feed and search engines.
    description: str = ""
    # "Display Name <address>" or a bare address.
    from_: str = "Privacy Notes <newsletter@example.com>"
    reply_to: str = ""
    base_url: str = ""
    postal_address: str = "Privacy Notes, 1 Example Street, 10115 Berlin, Germany"
    language: str = "en"
    # Defaults to "<slug of name>.<domain of from>"; RFC 2919.
    list_id: str = ""
    # Optional mailto: for List-Unsubscribe in addition to the HTTPS one-click URL.
    unsubscribe_mailto: str = ""
    # Who previews and the sample .eml are personalized for (default: the list's first row). Test sends
    # go to strangers: they carry only sample_name (empty: the template's fallback, "Hi there,").
    sample_email: str = ""
    sample_name: str = ""

    @property
    def from_address(self) -> str:
        return parseaddr(self.from_)[1]

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2]


@dataclass(frozen=True)
class PathsSection:
    issues: Path = Path("issues")
    templates: Path = Path("templates")
    subscribers: Path = Path("subscribers.csv")
    # A file path (SQLite) or a postgresql:// URL.
    state: str = "newsletter.db"
    outbox: Path = Path("outbox")
    build: Path = Path("build")
    # Default output folder of `newsletter site build`.
    site: Path = Path("site")


@dataclass(frozen=True)
class DeliverySection:
    backend: Literal["outbox", "smtp"] = "outbox"
    # A CSV with at least this many lines streams into the send: the first messages leave while it is
    # read, and it is checked whole once read (a smaller one is synced and checked before any message).
    stream_from: int = 20_000


@dataclass(frozen=True)
class SmtpSection:
    host: str = "localhost"
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    # A login over a connection without TLS sends the password in clear: refused unless this says so.
    allow_plaintext_auth: bool = False
    timeout: float = 30.0
    # Sending-engine knobs (used by `newsletter send`).
    connections: int = 16
    rate: float = 0.0
    max_per_hour: int = 0
    max_attempts: int = 5
    retry_base_delay: float = 2.0
    max_failure_ratio: float = 0.5
    failure_ratio_min_sample: int = 20
    # No message delivered for this long: the run pauses (a relay that never answers); 0 = never.
    stall_timeout: dt.timedelta = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ScheduleSection:
    cron: CronExpr = field(default_factory=lambda: CronExpr.parse("0 9 * * mon"))
    timezone: dt.tzinfo = field(default_factory=local_zone)
    catch_up: dt.timedelta = dt.timedelta(hours=12)
    skip_if_empty: bool = True
    subject: SubjectTemplate = field(default_factory=lambda: SubjectTemplate.compile(DEFAULT_SUBJECT))
    lookback: dt.timedelta = dt.timedelta(days=7)
    content: Literal["summary", "full"] = "summary"
    # At each cron run: "digest" sends the articles since the previous digest; "each" sends the
    # oldest published, not yet sent, unscheduled article as its own issue.
    mode: Literal["digest", "each"] = "digest"
    # At most one run per this span ("2w": fortnightly), counted from `start`; 0 = every cron run.
    every: dt.timedelta = dt.timedelta(0)
    start: dt.date = dt.date(2001, 1, 1)  # a Monday: "2w" counts ISO weeks in pairs by default

    @property
    def tz_name(self) -> str:
        return str(getattr(self.timezone, "key", self.timezone))


@dataclass(frozen=True)
class DkimSection:
    """DKIM signing, when `domain` is set: the key's DNS record is `<selector>._domainkey.<domain>`."""

    domain: str = ""
    selector: str = ""
    key_file: str = ""  # a PEM private key, readable by its owner only
    algorithm: Literal["rsa-sha256", "ed25519-sha256"] = "rsa-sha256"


@dataclass(frozen=True)
class PreviewSection:
    host: str = "127.0.0.1"
    port: int = 8025
    # Host names (comma-separated) other machines may reach a non-loopback preview by (--allow-remote).
    allow_remote: str = ""


@dataclass(frozen=True)
class ServeSection:
    host: str = "127.0.0.1"
    port: int = 8000
    # Proxies whose X-Forwarded-For/-Proto are trusted (uvicorn's forwarded_allow_ips): the reverse proxy.
    forwarded_allow_ips: str = "127.0.0.1"


# The longest VERP token send/verp.py writes ("<campaign>-<delivery>-<mac>" in hex, 6 + 8 + 12 digits):
# the bounce address's local part must leave room for it within SMTP's 64 characters.
VERP_TOKEN_MAX_LENGTH = 28


@dataclass(frozen=True)
class BouncesSection:
    # The envelope sender (Return-Path) of list messages becomes "<local>+<token>@<domain>" (VERP).
    address: str = ""
    # Where bounces are read: an IMAP mailbox (password from NEWSLETTER_BOUNCES_PASSWORD) or a Maildir.
    imap_host: str = ""
    imap_port: int = 0  # 0: 993 with tls, 143 otherwise
    imap_security: Literal["tls", "starttls", "none"] = "tls"
    imap_user: str = ""
    imap_folder: str = "INBOX"
    maildir: str = ""
    # Processed messages are moved here (an IMAP folder, or a Maildir++ sub-folder), made when missing.
    processed_folder: str = "Processed"
    # How often `newsletter schedule` reads the mailbox; 0 never.
    interval: dt.timedelta = dt.timedelta(minutes=10)
    # Soft bounces (4.x.x) suppress an address once this many arrive within soft_window.
    soft_limit: int = 3
    soft_window: dt.timedelta = dt.timedelta(days=30)

    @property
    def port(self) -> int:
        return self.imap_port or (993 if self.imap_security == "tls" else 143)

    @property
    def has_mailbox(self) -> bool:
        return bool(self.imap_host or self.maildir)


@dataclass(frozen=True)
class SignupSection:
    """The signup form of `newsletter serve` (double opt-in)."""

    enabled: bool = True
    # How long a confirmation link works.
    confirm_expiry: dt.timedelta = dt.timedelta(days=7)
    # At most this many confirmation mails per address per interval.
    mail_interval: dt.timedelta = dt.timedelta(hours=1)
    # POST /subscribe per client (IP address) per window; 0 = unlimited.
    rate_limit: int = 10
    rate_window: dt.timedelta = dt.timedelta(hours=1)


@dataclass(frozen=True)
class FeedSection:
    """Posts pulled from a blog's RSS or Atom feed into the issues folder (`newsletter feed pull`)."""

    # An http(s) URL or a local file; empty: no feed (the scheduler and `send --due` pull nothing).
    url: str = ""
    # "digest": pulled posts are ordinary articles (the digest holds them, or mode "each" sends one per
    # run); "each": every post new since the previous pull goes out as its own issue (send_at = the pull).
    mode: Literal["digest", "each"] = "digest"
    # How often `newsletter schedule` and `send --due` pull besides right before each run; 0 = only then.
    interval: dt.timedelta = dt.timedelta(hours=1)
    # Seconds to wait for the feed's server; a feed larger than max_size_mb is refused unread.
    timeout: float = 30.0
    max_size_mb: float = 10.0


@dataclass(frozen=True)
class Config:
    newsletter: NewsletterSection = field(default_factory=NewsletterSection)
    paths: PathsSection = field(default_factory=PathsSection)
    delivery: DeliverySection = field(default_factory=DeliverySection)
    smtp: SmtpSection = field(default_factory=SmtpSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    dkim: DkimSection = field(default_factory=DkimSection)
    preview: PreviewSection = field(default_factory=PreviewSection)
    serve: ServeSection = field(default_factory=ServeSection)
    bounces: BouncesSection = field(default_factory=BouncesSection)
    signup: SignupSection = field(default_factory=SignupSection)
    feed: FeedSection = field(default_factory=FeedSection)
    # Folder that relative paths are resolved against (the config file's folder).
    root: Path = Path(".")
    # The file it came from, or None when running on built-in defaults.
    source: Path | None = None
    smtp_password: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    bounces_password: str = field(default="", repr=False)

    @property
    def where(self) -> str:
        """How errors name the configuration: its file, or the built-in defaults."""
        return str(self.source) if self.source else "built-in defaults"

    def path(self, name: str) -> Path:
        """An entry of [paths], resolved against the config file's folder."""
        return self.resolve(Path(getattr(self.paths, name)))

    def resolve(self, value: Path) -> Path:
        """A path from the config, relative to the config file's folder."""
        return value if value.is_absolute() else self.root / value

    @property
    def state_is_url(self) -> bool:
        return "://" in self.paths.state

    @property
    def state_url(self) -> str:
        """The SQLAlchemy URL of the state database: a resolved SQLite file, or the PostgreSQL URL (psycopg)."""
        if self.state_is_url:
            scheme, rest = self.paths.state.split("://", 1)
            return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else self.paths.state
        return f"sqlite:///{self.path('state').resolve()}"

    @property
    def state_dir(self) -> Path:
        """Where files that belong with the state live (send journals): beside a SQLite file, else the root."""
        return self.root.resolve() if self.state_is_url else self.path("state").resolve().parent

    @property
    def state_shown(self) -> str:
        """The state database as messages name it: the file, or the URL without its password."""
        if not self.state_is_url:
            return str(self.path("state"))
        scheme, rest = self.paths.state.split("://", 1)
        userinfo, at, host = rest.rpartition("@")
        return f"{scheme}://{userinfo.split(':', 1)[0]}{at}{host}" if at else self.paths.state


SECTIONS: dict[str, type] = {
    "newsletter": NewsletterSection,
    "paths": PathsSection,
    "delivery": DeliverySection,
    "smtp": SmtpSection,
    "schedule": ScheduleSection,
    "dkim": DkimSection,
    "preview": PreviewSection,
    "serve": ServeSection,
    "bounces": BouncesSection,
    "signup": SignupSection,
    "feed": FeedSection,
}
