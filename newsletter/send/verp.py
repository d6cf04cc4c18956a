"""VERP: each message's envelope sender names its campaign and recipient, so a bounce says who bounced.

With `[bounces] address = "bounces@example.com"` a list message goes out with the envelope sender
(MAIL FROM, later the Return-Path) `bounces+<token>@example.com`, and every bounce comes back to
that exact address whatever the remote server writes in its report. The token is
`<campaign>-<delivery>-<mac>`: the ids and a 48-bit HMAC over the ids and the recipient's address,
in hex, so it shows no address, cannot be forged, and stops matching if the database is rebuilt and
the ids come to mean other people. A test send's token is `0-<minute>-<mac>` (campaign 0: no
delivery row exists); its MAC covers the address, which the bounce's report must then name. Hex
digits and '-' only, at most 28 characters for up to 16.7 million campaigns and 4.3 billion delivery
rows: MTAs may lower-case a local part, and SMTP allows 64 characters before the @. The key is
derived from NEWSLETTER_SECRET_KEY with a purpose string of its own.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import time
from dataclasses import dataclass

from ..config import Config
from ..config.sections import VERP_TOKEN_MAX_LENGTH
from ..errors import ConfigError

PURPOSE = b"newsletter/bounces/verp"
MAC_BYTES = 6  # 48 bits: 12 hex digits
_HEX = frozenset("0123456789abcdef")


def _number(text: str) -> int | None:
    """A hex number as `{:x}` writes it: no leading zero, so each token has one spelling."""
    if not text or len(text) > 16 or not set(text) <= _HEX or (text[0] == "0" and text != "0"):
        return None
    return int(text, 16)


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
        return f"{self.campaign_id:x}-{self.number:x}-{self.mac}"


class Verp:
    """Writes and checks the VERP addresses of one bounce address and secret."""

    def __init__(self, address: str, secret: str) -> None:
        local, _at, domain = address.rpartition("@")
        self.local = local.lower()
        self.domain = domain.lower()
        self._keyed = hmac.new(_key(secret), digestmod=hashlib.sha256)  # copied per message: cheaper

    def _mac(self, campaign_id: int, number: int, email: str) -> str:
        mac = self._keyed.copy()
        mac.update(f"{campaign_id}:{number}:{email.lower()}".encode())
        return mac.digest()[:MAC_BYTES].hex()

    def _address(self, campaign_id: int, number: int, email: str) -> str:
        token = f"{campaign_id:x}-{number:x}-{self._mac(campaign_id, number, email)}"
        return f"{self.local}+{token}@{self.domain}"

    def list_sender(self, campaign_id: int, delivery_id: int, email: str) -> str:
        """The envelope sender of one delivery row's message."""
        return self._address(campaign_id, delivery_id, email)

    def test_sender(self, email: str, when: float | None = None) -> str:
        """The envelope sender of a test send to `email` (campaign 0: there is no delivery row)."""
        return self._address(0, int((time.time() if when is None else when) // 60), email)

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
        number = _number(number_text)
        campaign = _number(head)
        if number is None or campaign is None or len(mac) != 2 * MAC_BYTES or not set(mac) <= _HEX:
            return None
        return VerpToken(campaign, number, mac)

    def verify(self, token: VerpToken, email: str) -> bool:
        """Whether the token was made by this secret for this address (and these ids)."""
        return hmac.compare_digest(self._mac(token.campaign_id, token.number, email), token.mac)


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
