"""Signed, expiring confirmation tokens for signups, and keyed hashes of what must not be stored in clear.

A token carries the signup (list, address, name, when, the client's keyed hash), encrypted and
authenticated like the unsubscribe token (AES-SIV, tokens.py) but with a key and associated data of
their own purpose, so one kind can never pass for the other and the address does not show in a
proxy's access log. It stops working `max_age` after the signup (7 days by default).

Client addresses (for the rate limit and the consent record) and addresses in rate-limit buckets
are stored only as keyed hashes: HMAC-SHA256 under a key derived from the secret, truncated.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Literal

from .tokens import seal, unseal

PURPOSE = "confirm"
CLOCK_SKEW = dt.timedelta(minutes=5)


@functools.lru_cache(maxsize=16)
def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"newsletter/{purpose}".encode(), hashlib.sha256).digest()


def keyed_hash(secret: str, purpose: str, value: str) -> str:
    """A short keyed hash of `value` (an IP address, an email address): recognizable, not readable."""
    return hmac.new(_key(secret, f"hash/{purpose}"), value.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Signup:
    """What a confirmation token says: who signed up for which list, and when."""

    list_id: str
    email: str
    name: str
    first_name: str
    requested_at: dt.datetime  # naive UTC
    client: str  # the keyed hash of the client's address


def make_confirm_token(secret: str, signup: Signup) -> str:
    stamp = int(signup.requested_at.replace(tzinfo=dt.UTC).timestamp())
    fields = [signup.list_id, signup.email, signup.name, signup.first_name, stamp, signup.client]
    payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()
    return seal(secret, PURPOSE, payload)


TokenState = Literal["ok", "expired", "invalid"]


def read_confirm_token(
    secret: str, token: str, max_age: dt.timedelta, now: dt.datetime
) -> tuple[TokenState, Signup | None]:
    """("ok", signup), ("expired", signup) or ("invalid", None) for anything forged, truncated or malformed."""
    payload = unseal(secret, PURPOSE, token)
    if payload is None:
        return "invalid", None
    try:
        list_id, email, name, first_name, stamp, client = json.loads(payload)
        requested = dt.datetime.fromtimestamp(int(stamp), dt.UTC).replace(tzinfo=None)
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return "invalid", None
    if not all(isinstance(v, str) for v in (list_id, email, name, first_name, client)) or "@" not in email:
        return "invalid", None
    signup = Signup(list_id, email, name, first_name, requested, client)
    if requested > now + CLOCK_SKEW:
        return "invalid", None
    if now - requested > max_age:
        return "expired", signup
    return "ok", signup
