"""Unsubscribe tokens and the per-subscriber List-Unsubscribe values (RFC 2369, RFC 8058).

A token names the list and the address, and is opaque and unforgeable: the payload is encrypted
and authenticated with AES-SIV under a key derived from NEWSLETTER_SECRET_KEY (tokens.py), so nobody
can unsubscribe an address they only guessed, and the addresses do not show up in a reverse proxy's
access log. Tokens stay valid forever (an unsubscribe link must work years later) and across a
changed list_id; rotating the secret invalidates every link already sent, so don't. Release 0.1's
tokens are still read (tokens.py says for how long).

Without a base_url and a secret there is no one-click URL: a mailto: link to the sender stands in
(the writer removes such addresses with `newsletter subscribers unsubscribe`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Config
from ..errors import ConfigError
from .tokens import seal, unseal

PURPOSE = "unsubscribe"
MIN_SECRET_LENGTH = 16


def make_token(secret: str, list_id: str, email: str) -> str:
    """URL-safe, stable for a given (secret, list, address): the same subscriber always gets the same link."""
    payload = json.dumps([list_id, email.lower()], separators=(",", ":"), ensure_ascii=False).encode()
    return seal(secret, PURPOSE, payload)


def read_token(secret: str, token: str) -> tuple[str, str] | None:
    """(list_id, email) of a genuine token; None for anything forged, altered, truncated or malformed."""
    payload = unseal(secret, PURPOSE, token)
    if payload is None:
        return None
    try:
        list_id, email = json.loads(payload)
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    if not isinstance(list_id, str) or not isinstance(email, str) or "@" not in email:
        return None
    return list_id, email


def base_url_warnings(config: Config) -> list[str]:
    """Warnings about the unsubscribe setup that a command prints once (serve, render, send)."""
    nl = config.newsletter
    warnings = []
    if nl.base_url.startswith("http://"):
        host = urlsplit(nl.base_url).hostname or ""
        local = host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")
        warnings.append(
            f"[newsletter] base_url is {nl.base_url} (plain http{', local' if local else ''}): fine for local "
            "testing only; mail providers offer one-click unsubscribe (List-Unsubscribe-Post) only for https:// "
            "URLs, so use https:// in production"
        )
    if nl.base_url and config.secret_key and len(config.secret_key) < MIN_SECRET_LENGTH:
        warnings.append(
            f"NEWSLETTER_SECRET_KEY is shorter than {MIN_SECRET_LENGTH} characters: unsubscribe links are easier "
            "to forge; use a long random string (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return warnings


@dataclass(frozen=True)
class UnsubscribeLinks:
    url: str  # visible in the footer
    header: str  # List-Unsubscribe value
    one_click: bool  # whether List-Unsubscribe-Post applies (HTTPS URL only)


def one_click_available(config: Config) -> bool:
    return bool(config.newsletter.base_url and config.secret_key)


def require_secret_for_list(config: Config) -> None:
    """Sending to the list with a base_url but no secret would send broken links: refuse."""
    if config.newsletter.base_url and not config.secret_key:
        raise ConfigError(
            "NEWSLETTER_SECRET_KEY is not set but [newsletter] base_url is: unsubscribe links would not "
            "work; set it to a long random string (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)"
        )


class Unsubscriber:
    """Builds each subscriber's unsubscribe links; `list_id` is what tokens are scoped to."""

    def __init__(self, config: Config, list_id: str) -> None:
        self.config = config
        self.list_id = list_id
        nl = config.newsletter
        self.base = nl.base_url.rstrip("/")
        self.mailto = nl.unsubscribe_mailto or f"mailto:{nl.from_address}?subject=unsubscribe"
        if not self.mailto.startswith("mailto:"):
            self.mailto = f"mailto:{self.mailto}?subject=unsubscribe"

    def links(self, email: str) -> UnsubscribeLinks:
        if one_click_available(self.config):
            token = make_token(self.config.secret_key, self.list_id, email)
            url = f"{self.base}/unsubscribe/{token}"
            extra = f", <{self.mailto}>" if self.config.newsletter.unsubscribe_mailto else ""
            return UnsubscribeLinks(url=url, header=f"<{url}>{extra}", one_click=url.startswith("https://"))
        return UnsubscribeLinks(url=self.mailto, header=f"<{self.mailto}>", one_click=False)
