"""Unsubscribe tokens and the per-subscriber List-Unsubscribe values (RFC 2369, RFC 8058).

A token names the list and the address, and is opaque and unforgeable: the payload is encrypted
and authenticated with keys derived from NEWSLETTER_SECRET_KEY (a deterministic SIV construction:
the tag is an HMAC-SHA256 of the payload, the keystream SHAKE-256 of the tag), so nobody can
unsubscribe an address they only guessed, and the addresses do not show up in a reverse proxy's
access log. Tokens stay valid forever (an unsubscribe link must work years later) and across a
changed list_id; rotating the secret invalidates every link already sent, so don't.

Without a base_url and a secret there is no one-click URL: a mailto: link to the sender stands in
(the writer removes such addresses with `newsletter subscribers unsubscribe`).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import Config
from ..errors import ConfigError

_TAG_BYTES = 16
MAX_TOKEN_LENGTH = 1024
MIN_SECRET_LENGTH = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=8)
def _keys(secret: str) -> tuple[bytes, bytes]:
    """Separate MAC and encryption keys, so the one secret could sign other things safely later."""
    root = secret.encode()
    return (
        hmac.new(root, b"newsletter/unsubscribe/mac", hashlib.sha256).digest(),
        hmac.new(root, b"newsletter/unsubscribe/enc", hashlib.sha256).digest(),
    )


def _xor(data: bytes, enc_key: bytes, tag: bytes) -> bytes:
    stream = hashlib.shake_256(enc_key + tag).digest(len(data))
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def make_token(secret: str, list_id: str, email: str) -> str:
    """URL-safe, stable for a given (secret, list, address): the same subscriber always gets the same link."""
    mac_key, enc_key = _keys(secret)
    payload = json.dumps([list_id, email.lower()], separators=(",", ":"), ensure_ascii=False).encode()
    tag = hmac.new(mac_key, payload, hashlib.sha256).digest()[:_TAG_BYTES]
    return _b64(tag + _xor(payload, enc_key, tag))


def read_token(secret: str, token: str) -> tuple[str, str] | None:
    """(list_id, email) of a genuine token; None for anything forged, truncated or malformed."""
    if not secret or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        raw = _unb64(token)
    except (ValueError, binascii.Error):
        return None
    if len(raw) <= _TAG_BYTES:
        return None
    mac_key, enc_key = _keys(secret)
    tag, body = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
    payload = _xor(body, enc_key, tag)
    if not hmac.compare_digest(hmac.new(mac_key, payload, hashlib.sha256).digest()[:_TAG_BYTES], tag):
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
