"""Signed unsubscribe tokens and the per-subscriber List-Unsubscribe values (RFC 2369, RFC 8058).

A token is `<payload>.<signature>`, both base64url: the payload names the list and the address,
the signature is an HMAC-SHA256 with NEWSLETTER_SECRET_KEY, so nobody can unsubscribe an address
they only guessed. Without a base_url and a secret there is no one-click URL: a mailto: link to the
sender stands in (the writer removes such addresses by hand).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import quote

from .config import Config
from .errors import ConfigError

_SIGNATURE_BYTES = 20


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: str, payload: str) -> str:
    mac = hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest()
    return _b64(mac[:_SIGNATURE_BYTES])


def make_token(secret: str, list_id: str, email: str) -> str:
    payload = _b64(json.dumps([list_id, email.lower()], separators=(",", ":")).encode())
    return f"{payload}.{_signature(secret, payload)}"


def read_token(secret: str, token: str) -> tuple[str, str] | None:
    """(list_id, email) of a genuine token; None for anything forged, truncated or malformed."""
    payload, _, signature = token.partition(".")
    if not payload or not signature or not secret:
        return None
    try:
        if not hmac.compare_digest(_signature(secret, payload), signature):
            return None
        list_id, email = json.loads(_unb64(payload))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(list_id, str) or not isinstance(email, str):
        return None
    return list_id, email


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
            url = f"{self.base}/unsubscribe/{quote(token)}"
            extra = f", <{self.mailto}>" if self.config.newsletter.unsubscribe_mailto else ""
            return UnsubscribeLinks(url=url, header=f"<{url}>{extra}", one_click=url.startswith("https://"))
        return UnsubscribeLinks(url=self.mailto, header=f"<{self.mailto}>", one_click=False)
