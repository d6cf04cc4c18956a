"""VERP: each message's envelope sender names its campaign and recipient, so a bounce says who bounced.

With `[bounces] address = "bounces@example.com"` a list message goes out with the envelope sender
(MAIL FROM, later the Return-Path) `bounces+<token>@example.com`, and every bounce comes back to
that exact address whatever the remote server writes in its report. The token is
`<campaign>-<delivery>-<mac>`: the ids in base 36 and a 60-bit HMAC in base 32 over the ids and
the recipient's address, so it shows no address, cannot be forged, and stops matching if the
database is rebuilt and the ids come to mean other people. A test send's token is `0-<minute>-<mac>`
(campaign 0: no delivery row exists): its MAC covers the address, which the bounce's report must then name.
Lower-case letters, digits and '-' only, at most 28 characters: MTAs may lower-case a local part,
and SMTP allows 64 characters before the @. The key is derived from NEWSLETTER_SECRET_KEY with a
purpose string of its own.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import time
from dataclasses import dataclass

from ..config import Config
from ..config.sections import VERP_TOKEN_MAX_LENGTH
from ..errors import ConfigError

PURPOSE = b"newsletter/bounces/verp"
MAC_CHARS = 12  # 60 bits
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_B32 = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def b36(number: int) -> str:
    if number < 0:
        raise ValueError("negative id")
    digits = []
    while True:
        number, rest = divmod(number, 36)
        digits.append(_DIGITS[rest])
        if not number:
            return "".join(reversed(digits))


def _from_b36(text: str) -> int | None:
    if not text or len(text) > 13 or any(c not in _DIGITS for c in text):
        return None
    return int(text, 36)


@functools.lru_cache(maxsize=4)
def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest()


@dataclass(frozen=True)
class VerpToken:
    """A token read back from a bounce address; `verify` it before trusting it."""

    campaign_id: int  # 0 for a test send
    number: int  # the delivery row's id; for a test send the minute it was sent (Unix minutes)
    mac: str

    @property
    def test(self) -> bool:
        return self.campaign_id == 0

    def __str__(self) -> str:
        return f"{b36(self.campaign_id)}-{b36(self.number)}-{self.mac}"


class Verp:
    """Writes and checks the VERP addresses of one bounce address and secret."""

    def __init__(self, address: str, secret: str) -> None:
        local, _at, domain = address.rpartition("@")
        self.local = local.lower()
        self.domain = domain.lower()
        self._key = _key(secret)

    def _mac(self, head: str, number: int, email: str) -> str:
        digest = hmac.new(self._key, f"{head}:{number}:{email.lower()}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:8]).decode("ascii")[:MAC_CHARS].lower()

    def _address(self, head: str, number: int, email: str) -> str:
        token = f"{head}-{b36(number)}-{self._mac(head, number, email)}"
        return f"{self.local}+{token}@{self.domain}"

    def list_sender(self, campaign_id: int, delivery_id: int, email: str) -> str:
        """The envelope sender of one delivery row's message."""
        return self._address(b36(campaign_id), delivery_id, email)

    def test_sender(self, email: str, when: float | None = None) -> str:
        """The envelope sender of a test send to `email`."""
        return self._address("0", int((time.time() if when is None else when) // 60), email)

    def token_in(self, address: str) -> str | None:
        """The token of `bounces+TOKEN@domain` (this bounce address, any case); None for other addresses."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        base, plus, token = local.lower().rpartition("+")
        if not at or not plus or base != self.local or domain.lower() != self.domain:
            return None
        return token

    @staticmethod
    def parse(token: str) -> VerpToken | None:
        """The parts of a well-formed token; None for anything malformed."""
        if len(token) > VERP_TOKEN_MAX_LENGTH + 8:
            return None
        parts = token.lower().split("-")
        if len(parts) != 3:
            return None
        head, number_text, mac = parts
        number = _from_b36(number_text)
        campaign = _from_b36(head)
        if number is None or campaign is None:
            return None
        if len(mac) != MAC_CHARS or not set(mac) <= _B32:
            return None
        return VerpToken(campaign, number, mac)

    def verify(self, token: VerpToken, email: str) -> bool:
        """Whether the token was made by this secret for this address (and these ids)."""
        return hmac.compare_digest(self._mac(b36(token.campaign_id), token.number, email), token.mac)


def verp_for(config: Config) -> Verp | None:
    """The VERP writer of this configuration; None without `[bounces] address` (the From address is the sender)."""
    address = config.bounces.address
    if not address:
        return None
    if not config.secret_key:
        raise ConfigError(
            "NEWSLETTER_SECRET_KEY is not set but [bounces] address is: the bounce address's tokens are signed "
            "with it; set it to a long random string (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)"
        )
    return Verp(address, config.secret_key)
