"""Opaque, authenticated tokens for links (unsubscribe, signup confirmation): AES-SIV and a strict encoding.

A token is `base64url(AES-SIV(payload))` (RFC 5297, `cryptography`'s AESSIV: OpenSSL underneath),
with a 512-bit key derived from NEWSLETTER_SECRET_KEY by HKDF-SHA256 per purpose, and the purpose as
associated data: one kind of token never opens as another. SIV is deterministic, so a subscriber
always gets the same link, and it is misuse-resistant; nothing here is home-made cryptography.

The text is read strictly: only the URL-safe alphabet, no padding, no trailing bits, so a token has
exactly one spelling and every altered form (an appended `==`, a `%00`, an inserted `!`) is refused
before any decryption. Release 0.1 wrote tokens with an HMAC tag and a SHAKE-256 keystream; links in
emails sent then keep working (`legacy_unseal`, read with the same strictness) for at least a year
after this release, as the CHANGELOG says.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from typing import Any

MAX_TOKEN_LENGTH = 1024
SIV_BYTES = 16
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")


def encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_strict(token: str) -> bytes | None:
    """The bytes of a canonical unpadded base64url text; None for anything else."""
    if not token or len(token) > MAX_TOKEN_LENGTH or len(token) % 4 == 1 or not _ALPHABET.fullmatch(token):
        return None
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, binascii.Error):
        return None
    # Unused low bits in the last character give other spellings of the same bytes: not ours.
    return data if encode(data) == token else None


@functools.lru_cache(maxsize=16)
def _cipher(secret: str, purpose: str) -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(
        algorithm=hashes.SHA256(), length=64, salt=None, info=f"newsletter/{purpose}/aes-siv".encode()
    ).derive(secret.encode())
    return AESSIV(key)


def seal(secret: str, purpose: str, payload: bytes) -> str:
    """The token for `payload`: the same (secret, purpose, payload) always gives the same token."""
    return encode(_cipher(secret, purpose).encrypt(payload, [purpose.encode()]))


def unseal(secret: str, purpose: str, token: str) -> bytes | None:
    """The payload of a genuine token of this purpose (either format); None for anything else."""
    if not secret:
        return None
    raw = decode_strict(token)
    if raw is None or len(raw) <= SIV_BYTES:
        return None
    from cryptography.exceptions import InvalidTag

    try:
        return bytes(_cipher(secret, purpose).decrypt(raw, [purpose.encode()]))
    except InvalidTag:
        return legacy_unseal(secret, purpose, raw)


@functools.lru_cache(maxsize=16)
def _legacy_keys(secret: str, purpose: str) -> tuple[bytes, bytes]:
    root = secret.encode()
    return (
        hmac.new(root, f"newsletter/{purpose}/mac".encode(), hashlib.sha256).digest(),
        hmac.new(root, f"newsletter/{purpose}/enc".encode(), hashlib.sha256).digest(),
    )


def legacy_unseal(secret: str, purpose: str, raw: bytes) -> bytes | None:
    """Release 0.1's construction: a 16-byte HMAC-SHA256 tag, then the payload XORed with SHAKE-256(key + tag)."""
    mac_key, enc_key = _legacy_keys(secret, purpose)
    tag, body = raw[:SIV_BYTES], raw[SIV_BYTES:]
    stream = hashlib.shake_256(enc_key + tag).digest(len(body))
    payload = bytes(a ^ b for a, b in zip(body, stream, strict=True))
    expected = hmac.new(mac_key, payload, hashlib.sha256).digest()[:SIV_BYTES]
    return payload if hmac.compare_digest(expected, tag) else None

