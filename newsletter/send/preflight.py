"""Is this set-up ready for a real send? The checks behind `newsletter doctor` and a list send's refusal.

Each finding is one line that names the setting and says what to do. Errors are what makes mail
bounce, land in spam or break the law (an example From, the example postal address, a key that
cannot sign); warnings cost deliverability (no one-click unsubscribe, a weak key); notes inform.
Nothing here touches the network: the DNS checks are in preflight_dns.py, run only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from enum import StrEnum
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from ..config import Config
from ..config.sections import NewsletterSection
from ..errors import ConfigError
from ..render.dkim import signer_for
from ..render.unsubscribe import MIN_SECRET_LENGTH


class Level(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"
    OK = "ok"


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str  # one line: the setting, what is wrong or right, and the fix


# RFC 2606 and RFC 6761: names that exist for examples and tests; nothing sent from them arrives.
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
RESERVED_TLDS = ("example", "test", "invalid", "localhost")
# Mailbox providers whose DMARC policy refuses or bins their domain's mail sent from other servers.
MAILBOX_PROVIDERS = (
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "aol.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "icloud.com",
    "me.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
)
EXAMPLE_POSTAL_ADDRESS = NewsletterSection().postal_address
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def is_reserved(domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    return (
        domain in RESERVED_DOMAINS
        or domain.endswith(tuple(f".{d}" for d in RESERVED_DOMAINS))
        or domain.rpartition(".")[2] in RESERVED_TLDS
    )


def organizational_domain(domain: str) -> str:
    """The registered domain under which DMARC compares names (news.example.org -> example.org).

    Without the Public Suffix List: the last two labels, or three under a two-letter country code's
    short second level (example.co.uk); good for alignment checks, which only compare.
    """
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def aligned(one: str, other: str) -> bool:
    """DMARC's relaxed alignment: both names under the same organizational domain."""
    return organizational_domain(one) == organizational_domain(other)


def envelope_domain(config: Config) -> str:
    """The domain of the envelope sender (Return-Path), which SPF checks: the bounce address's, else From's."""
    return (config.bounces.address or config.newsletter.from_address).rpartition("@")[2].lower()


def is_local_host(host: str) -> bool:
    return host.lower() in _LOOPBACK or host.startswith("127.")


def _from_findings(config: Config) -> list[Finding]:
    nl = config.newsletter
    address = nl.from_address
    key = f"{config.where}: [newsletter] from"
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        return [
            Finding(Level.ERROR, f'{key}: {address!r} is not a valid address ({exc}); use "Name <you@yourdomain.org>"')
        ]
    domain = nl.domain.lower()
    if is_reserved(domain):
        return [
            Finding(
                Level.ERROR,
                f"{key}: {address} is on {domain}, a domain reserved for examples: receivers refuse or bin mail "
                f'from it; set from = "{nl.name} <news@yourdomain.org>" with a domain you control',
            )
        ]
    if domain in MAILBOX_PROVIDERS:
        return [
            Finding(
                Level.ERROR,
                f"{key}: {address} is on {domain}, a mailbox provider's domain: its DMARC policy makes receivers "
                f"refuse or bin list mail sent through any other server; send from a domain of your own",
            )
        ]
    findings = [Finding(Level.OK, f"[newsletter] from: {address}")]
    reply = parseaddr(nl.reply_to)[1] if nl.reply_to else ""
    if nl.reply_to:
        try:
            validate_email(reply, check_deliverability=False)
        except EmailNotValidError as exc:
            findings.append(
                Finding(
                    Level.WARNING, f"{config.where}: [newsletter] reply_to: {reply!r} is not a valid address ({exc})"
                )
            )
    return findings


def _postal_findings(config: Config) -> list[Finding]:
    postal = config.newsletter.postal_address.strip()
    key = f"{config.where}: [newsletter] postal_address"
    if not postal:
        return [
            Finding(
                Level.ERROR,
                f"{key}: empty; every email must show the sender's postal address (CAN-SPAM, and the EU's "
                f"imprint rules): set postal_address",
            )
        ]
    if postal == EXAMPLE_POSTAL_ADDRESS:
        return [
            Finding(
                Level.ERROR,
                f"{key}: still the example address ({postal}); every email shows it (CAN-SPAM): put your own",
            )
        ]
    return [Finding(Level.OK, "[newsletter] postal_address: set")]


def _unsubscribe_findings(config: Config) -> list[Finding]:
    base_url = config.newsletter.base_url
    key = f"{config.where}: [newsletter] base_url"
    if not base_url:
        return [
            Finding(
                Level.WARNING,
                f"{key}: not set, so the only unsubscribe is a mailto: link someone must read, and there is no "
                f"one-click unsubscribe (RFC 8058), which Gmail and Yahoo require of bulk senders; set base_url = "
                f'"https://news.yourdomain.org" where `newsletter serve` runs, and NEWSLETTER_SECRET_KEY',
            )
        ]
    if not config.secret_key:
        return [
            Finding(
                Level.ERROR,
                "NEWSLETTER_SECRET_KEY is not set but [newsletter] base_url is: unsubscribe links would not work; "
                "set it to a long random string (python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            )
        ]
    findings = []
    scheme = urlsplit(base_url).scheme
    if scheme != "https":
        findings.append(
            Finding(
                Level.WARNING,
                f"{key}: {base_url} is not https://, so there is no one-click unsubscribe (providers offer it for "
                f"https only); serve it over HTTPS behind a reverse proxy and use https:// here",
            )
        )
    else:
        findings.append(Finding(Level.OK, f"one-click unsubscribe: {base_url.rstrip('/')}/unsubscribe/<token>"))
    if len(config.secret_key) < MIN_SECRET_LENGTH:
        findings.append(
            Finding(
                Level.WARNING,
                f"NEWSLETTER_SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters: unsubscribe links are easier "
                f"to forge; use a long random string",
            )
        )
    return findings


def _dkim_findings(config: Config) -> list[Finding]:
    dkim = config.dkim
    if not dkim.domain:
        return [
            Finding(
                Level.NOTE,
                "[dkim]: not set, so messages leave unsigned; make sure your relay signs them with your From domain "
                "(d=" + (config.newsletter.domain or "yourdomain.org") + "), or set [dkim] to sign them here",
            )
        ]
    try:
        signer = signer_for(config)
    except ConfigError as exc:
        return [Finding(Level.ERROR, str(exc))]
    assert signer is not None
    findings = []
    where = f"{config.where}: [dkim]"
    size = getattr(signer.key, "key_size", None)
    if size is not None and size < 2048:
        findings.append(
            Finding(Level.WARNING, f"{where} key_file: an RSA key of {size} bits is weak; make a 2048-bit key")
        )
    if dkim.algorithm == "ed25519-sha256":
        findings.append(
            Finding(
                Level.WARNING,
                f"{where} algorithm: ed25519-sha256 alone: Gmail and most receivers do not verify Ed25519 yet, so "
                f"to them the mail is unsigned; use rsa-sha256",
            )
        )
    if not aligned(dkim.domain, config.newsletter.domain):
        findings.append(
            Finding(
                Level.WARNING,
                f"{where} domain: {dkim.domain} is not the From's domain ({config.newsletter.domain}), so the "
                f"signature does not count for DMARC; sign with d={config.newsletter.domain}",
            )
        )
    if not findings:
        findings.append(
            Finding(Level.OK, f"[dkim]: signing with d={dkim.domain}, s={dkim.selector} ({dkim.algorithm})")
        )
    return findings


def _delivery_findings(config: Config) -> list[Finding]:
    if config.delivery.backend != "smtp":
        return [
            Finding(
                Level.NOTE,
                '[delivery] backend: outbox, so `send` writes .eml files and sends nothing; set backend = "smtp" '
                "and [smtp] host for a real send",
            )
        ]
    smtp = config.smtp
    if smtp.security == "none" and not is_local_host(smtp.host):
        return [
            Finding(
                Level.WARNING,
                f"{config.where}: [smtp] security: none to {smtp.host}, so the login and every message cross the "
                f'network unencrypted; use "starttls" (port 587) or "tls" (port 465)',
            )
        ]
    return [Finding(Level.OK, f"[smtp]: {smtp.host}:{smtp.port} ({smtp.security})")]


def check_setup(config: Config) -> list[Finding]:
    """Every check that needs no network, in the order `doctor` prints them."""
    return [
        *_from_findings(config),
        *_postal_findings(config),
        *_unsubscribe_findings(config),
        *_dkim_findings(config),
        *_delivery_findings(config),
    ]


def require_ready(config: Config, what: str) -> None:
    """Refuse a real send to the list when the set-up has an error (the outbox is no real send)."""
    if config.delivery.backend != "smtp":
        return
    errors = [f for f in check_setup(config) if f.level == Level.ERROR]
    if not errors:
        return
    more = f"{len(errors) - 1} more problem(s) and the fixes" if len(errors) > 1 else "the whole set-up"
    raise ConfigError(f"{errors[0].message} (nothing sent: {what}; `newsletter doctor` shows {more})")
