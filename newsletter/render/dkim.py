"""DKIM signatures (RFC 6376; Ed25519 per RFC 8463) on every message, when `[dkim]` is set.

Signed with `cryptography` (OpenSSL): dkimpy, the usual Python signer, canonicalizes and signs in
pure Python at about 26 ms a message here (40 messages a second), so it only verifies, in the
tests. Canonicalization is relaxed/relaxed; the signed headers are From, To, Subject, Date,
Message-ID, List-Id, List-Unsubscribe and List-Unsubscribe-Post, each named once more than it
appears, so nobody can add one after signing (RFC 8058 needs the one-click headers covered).
"""

from __future__ import annotations

import base64
import hashlib
import re
import stat
import time
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ConfigError

SIGNED = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
_WSP_RUN = re.compile(rb"[ \t]+")
_SPACES = re.compile(rb"  +")
_UNFOLD = re.compile(rb"\r\n(?=[ \t])")
_LINE = 74  # width of the folded DKIM-Signature lines


def _relaxed_header(name: bytes, value: bytes) -> bytes:
    value = _WSP_RUN.sub(b" ", _UNFOLD.sub(b"", value)).strip(b" \t\r\n")
    return name.strip().lower() + b":" + value + b"\r\n"


def _relaxed_body(body: bytes) -> bytes:
    """Whitespace runs as one space, none at a line's end, no empty lines at the end (RFC 6376 3.4.4).

    A regex that matches every space ([ \t]+) visits each of a 12 KB body's two thousand (0.66 ms a
    message, as much as the RSA signature); bytes.replace and a regex for runs of two or more, which
    starts from a fast substring search, take 0.03 ms.
    """
    if b"\t" in body:
        body = body.replace(b"\t", b" ")
    if b"  " in body:
        body = _SPACES.sub(b" ", body)
    body = body.replace(b" \r\n", b"\r\n").rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def _unstuff(body: bytes) -> bytes:
    """SMTP's dot-stuffing undone (the signature covers the message, not its wire form)."""
    if body.startswith(b".."):
        body = body[1:]
    return body.replace(b"\r\n..", b"\r\n.")


def _headers(block: bytes) -> list[tuple[bytes, bytes]]:
    """(name, raw value) of each field of a CRLF header block, in order, folding kept."""
    fields: list[tuple[bytes, bytes]] = []
    for line in re.split(rb"\r\n(?![ \t])", block):
        if line:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields


def _fold_tags(tags: str) -> bytes:
    """`DKIM-Signature:` and its tags up to an empty `b=`, which starts a line of its own.

    The signature is computed over this header with `b=` empty and then appended after `b=`, so
    everything before it must fold the same way with and without it: `b=` always starts a line.
    """
    out, line = [], "DKIM-Signature:"
    for tag in tags.split(" "):
        if len(line) + 1 + len(tag) > _LINE and line.strip():
            out.append(line)
            line = ""
        line += f" {tag}"
    out.append(line)
    return ("\r\n".join(out) + "\r\n b=").encode("ascii")


def _signature_lines(signature: str) -> bytes:
    return "\r\n ".join(signature[i : i + _LINE - 4] for i in range(0, len(signature), _LINE - 4)).encode()


class DkimSigner:
    """Signs finished messages (plain or wire form: wire form is un-stuffed for the body hash)."""

    def __init__(self, domain: str, selector: str, key: Any, algorithm: str, key_file: Path | None = None) -> None:
        self.domain = domain
        self.selector = selector
        self.key = key
        self.algorithm = algorithm
        self.key_file = key_file  # where a signing process loads the key from

    def _sign(self, data: bytes) -> bytes:
        return private_sign(self.key, self.algorithm, data)

    def sign(self, message: bytes, *, wire: bool = False) -> bytes:
        """The message with a DKIM-Signature header in front."""
        unsigned, data = self.prepare(message, wire=wire)
        return finish(unsigned, self._sign(data), message)

    def prepare(self, message: bytes, *, wire: bool = False) -> tuple[bytes, bytes]:
        """(the DKIM-Signature header up to `b=`, the data to sign): all of signing but the private-key step."""
        head, _, body = message.partition(b"\r\n\r\n")
        if wire:
            body = _unstuff(body)
        body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest()).decode()
        fields = _headers(head + b"\r\n")
        by_name: dict[bytes, list[bytes]] = {}
        for name, value in fields:
            by_name.setdefault(name.strip().lower(), []).append(value)
        names: list[str] = []
        canonical = b""
        for header in SIGNED:
            values = by_name.get(header.lower().encode(), [])
            for value in reversed(values):  # the last instance first (RFC 6376 5.4.2)
                canonical += _relaxed_header(header.encode(), value)
            names += [header] * (len(values) + 1)  # one more: a later, added field breaks the signature
        tags = (
            f"v=1; a={self.algorithm}; c=relaxed/relaxed; d={self.domain}; s={self.selector}; "
            f"t={int(time.time())}; h={':'.join(names)}; bh={body_hash};"
        )
        unsigned = _fold_tags(tags)
        canonical += _relaxed_header(b"DKIM-Signature", unsigned[len(b"DKIM-Signature:") :]).rstrip(b"\r\n")
        return unsigned, canonical


def finish(unsigned: bytes, signature: bytes, message: bytes) -> bytes:
    """The message with its DKIM-Signature header: `prepare`'s header, the signature after `b=`."""
    return unsigned + _signature_lines(base64.b64encode(signature).decode()) + b"\r\n" + message


def private_sign(key: Any, algorithm: str, data: bytes) -> bytes:
    """The private-key step of a DKIM signature (about 1 ms for RSA-2048 here, 0.06 ms for Ed25519)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    if algorithm == "ed25519-sha256":
        return bytes(key.sign(hashlib.sha256(data).digest()))
    return bytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))


def load_key(path: Path, algorithm: str, where: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{where}: [dkim] key_file: {path}: cannot read it ({exc.strerror})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{where}: [dkim] key_file: {path} can be read by others (mode {stat.S_IMODE(mode):o}); "
            f"make it private: chmod 600 {path}"
        )
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(f"{where}: [dkim] key_file: {path} is not an unencrypted PEM private key ({exc})") from None
    wanted = ed25519.Ed25519PrivateKey if algorithm == "ed25519-sha256" else rsa.RSAPrivateKey
    if not isinstance(key, wanted):
        kind = "an Ed25519" if algorithm == "ed25519-sha256" else "an RSA"
        raise ConfigError(f"{where}: [dkim] key_file: {path} is not {kind} key, as algorithm {algorithm} needs")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 1024:
        raise ConfigError(f"{where}: [dkim] key_file: an RSA key of {key.key_size} bits is too short; use 2048")
    return key


def signer_for(config: Config) -> DkimSigner | None:
    """The configured signer, or None without `[dkim]`; a key problem is a one-line ConfigError."""
    dkim = config.dkim
    if not dkim.domain:
        return None
    path = config.resolve(Path(dkim.key_file))
    return DkimSigner(dkim.domain, dkim.selector, load_key(path, dkim.algorithm, config.where), dkim.algorithm, path)
