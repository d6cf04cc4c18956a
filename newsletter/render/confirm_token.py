"""Signed, expiring confirmation tokens for signups, and keyed hashes of what must not be stored in clear.

A token carries the signup (list, address, name, when, the client's keyed hash), encrypted and
authenticated like the unsubscribe token (render/unsubscribe.py) but with keys of their own purpose
derived from NEWSLETTER_SECRET_KEY, so one kind can never pass for the other and the address does
not show in a proxy's access log. It stops working `max_age` after the signup (7 days by default).

Client addresses (for the rate limit and the consent record) and addresses in rate-limit buckets
are stored only as keyed hashes: HMAC-SHA256 under a key derived from the secret, truncated.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Literal

_TAG_BYTES = 16
MAX_TOKEN_LENGTH = 1024
CLOCK_SKEW = dt.timedelta(minutes=5)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=16)
def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"newsletter/{purpose}".encode(), hashlib.sha256).digest()


def keyed_hash(secret: str, purpose: str, value: str) -> str:
    """A short keyed hash of `value` (an IP address, an email address): recognizable, not readable."""
    return hmac.new(_key(secret, f"hash/{purpose}"), value.encode(), hashlib.sha256).hexdigest()[:32]


def _stream(data: bytes, secret: str, tag: bytes) -> bytes:
    stream = hashlib.shake_256(_key(secret, "confirm/enc") + tag).digest(len(data))
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


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
    tag = hmac.new(_key(secret, "confirm/mac"), payload, hashlib.sha256).digest()[:_TAG_BYTES]
    return _b64(tag + _stream(payload, secret, tag))


TokenState = Literal["ok", "expired", "invalid"]


def read_confirm_token(
    secret: str, token: str, max_age: dt.timedelta, now: dt.datetime
) -> tuple[TokenState, Signup | None]:
    """("ok", signup), ("expired", signup) or ("invalid", None) for anything forged, truncated or malformed."""
    if not secret or not token or len(token) > MAX_TOKEN_LENGTH:
        return "invalid", None
    try:
        raw = _unb64(token)
    except (ValueError, binascii.Error):
        return "invalid", None
    if len(raw) <= _TAG_BYTES:
        return "invalid", None
    tag, body = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
    payload = _stream(body, secret, tag)
    expected = hmac.new(_key(secret, "confirm/mac"), payload, hashlib.sha256).digest()[:_TAG_BYTES]
    if not hmac.compare_digest(expected, tag):
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
