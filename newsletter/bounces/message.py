"""Reading one raw message safely: bounded size, bounded MIME structure, an identity that makes it count once.

Everything in a bounce mailbox is untrusted: anybody can write to the bounce address. A message is
read up to MAX_BYTES (a report's own parts come before the returned message in every format, so a
huge returned attachment costs nothing); one with more than MAX_PARTS body parts (a MIME bomb,
deep or wide) is refused before the parser sees it, since Python's parser recurses per level.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.message import Message

MAX_BYTES = 1_000_000
MAX_PARTS = 200
_PART_HEADER = re.compile(rb"^content-type:", re.IGNORECASE | re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class Unreadable(Exception):
    """A message that cannot be read safely; `str()` is the one-line reason."""


@dataclass(frozen=True)
class Incoming:
    """One raw message and what is known about it before parsing."""

    data: bytes
    truncated: bool = False  # only the first MAX_BYTES were read
    envelope_to: str = ""  # the envelope recipient, when the MTA said it (bounces receive --recipient)


def clean(text: object, limit: int = 300) -> str:
    """One line of untrusted text, for output and storage: no control characters, bounded length."""
    # Undecodable bytes (surrogate escapes from the parser) become U+FFFD: storable, printable.
    flat = _CONTROL.sub(" ", str(text).encode("utf-8", "replace").decode("utf-8")).strip()
    flat = re.sub(r"\s{2,}", " ", flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def parse(incoming: Incoming) -> Message:
    """The parsed message (compat32: lenient, and it splits delivery-status parts into header blocks)."""
    data = incoming.data
    if not data.strip():
        raise Unreadable("empty message")
    parts = len(_PART_HEADER.findall(data))
    if parts > MAX_PARTS:
        raise Unreadable(f"a MIME bomb: {parts:,} body parts (at most {MAX_PARTS} are read)")
    try:
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
    except RecursionError:
        raise Unreadable("a MIME bomb: parts nested too deep to read") from None
    except Exception as exc:  # the parser is lenient; anything else is a message it cannot read at all
        raise Unreadable(f"cannot be parsed ({clean(exc, 120)})") from None
    if not msg.keys():
        raise Unreadable("not an email message (no header lines)")
    return msg


def message_key(msg: Message, data: bytes) -> str:
    """What makes a report count once: its Message-ID (copies of one report share it), else its bytes."""
    raw = msg.get("message-id")
    ident = clean(raw, 998).strip("<> ").lower() if raw else ""
    if ident and "@" in ident:
        return "m:" + hashlib.sha256(ident.encode("utf-8", "replace")).hexdigest()[:32]
    return "b:" + hashlib.sha256(data).hexdigest()[:32]
