"""What a message reports, whatever its format: failures per address, or why there is nothing to count.

Every reader (dsn.py, arf.py, ses.py, nonstandard.py) returns a `Report`; `kind_of` is the one
place that turns a status code into hard or soft. A 5.x.x status is hard, except "mailbox full"
(x.2.2) and policy refusals (x.7.x: spam filters, blocked senders), which say nothing about
whether the mailbox exists and count as soft, as the send's own 5.7.x rule does.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime

from ..state.statuses import BounceKind
from .message import clean

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC = re.compile(r"\b([45])\d\d\b")


@dataclass(frozen=True)
class Failure:
    """One address a report says failed or complained; `address` is "" when the report does not name it."""

    address: str
    kind: BounceKind
    status: str  # 5.1.1, 4.2.2, or a complaint's feedback type
    diagnostic: str = ""
    when: dt.datetime | None = None  # naive UTC


@dataclass(frozen=True)
class Original:
    """Headers of the message a report is about (returned or quoted), when it has them."""

    return_path: str = ""
    message_id: str = ""
    list_unsubscribe: str = ""
    to: str = ""


@dataclass
class Report:
    """A report's reading. `ignored`: recognized, nothing to count; `problem`: recognized but unusable."""

    source: str  # dsn, arf, ses, heuristic, auto-reply, unknown
    failures: list[Failure] = field(default_factory=list)
    ignored: str = ""
    problem: str = ""
    envelope: list[str] = field(default_factory=list)  # addresses that may hold the VERP token, best first
    original: Original | None = None


# Every part of a message with its content type, walked once: the readers look at the same parts.
Parts = list[tuple[Message, str]]


def parts_of(msg: Message) -> Parts:
    return [(part, part.get_content_type()) for part in msg.walk()]


def status_in(text: str) -> str:
    """The first status code in a text: an enhanced one (5.1.1), else a basic reply code as x.0.0."""
    found = _ENHANCED.search(text)
    if found and found.group(1) != "2":
        return found.group(0)
    basic = _BASIC.search(text)
    return f"{basic.group(1)}.0.0" if basic else ""


def kind_of(status: str, default: BounceKind) -> BounceKind:
    """Hard or soft, from an enhanced status code; `default` when there is none."""
    parts = status.split(".")
    if len(parts) != 3 or parts[0] not in ("4", "5"):
        return default
    if parts[0] == "4" or parts[1] == "7" or (parts[1] == "2" and parts[2] == "2"):
        return BounceKind.SOFT
    return BounceKind.HARD


def when_of(value: object) -> dt.datetime | None:
    """An RFC 5322 date as naive UTC; None when missing or unreadable."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(clean(value, 100))
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def address_in(value: object) -> str:
    """The one address in a header value or a report field ("rfc822; a@b", "<a@b>"), lower-cased; "" if none."""
    text = clean(value, 600)
    if ";" in text and "@" not in text.partition(";")[0]:
        text = text.partition(";")[2]
    found = [a for _n, a in getaddresses([text]) if "@" in a]
    address = found[0].strip().lower() if found else ""
    if not address or len(address) > 254 or any(c.isspace() or c in "<>\"'" for c in address):
        return ""
    return address


def headers_of(part: Message, kind: str) -> Message | None:
    """The headers of an enclosed message: message/rfc822 (parsed) or text/rfc822-headers (text)."""
    if kind == "message/rfc822":
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        return None
    if kind in ("text/rfc822-headers", "message/rfc822-headers"):
        text = part.get_payload(decode=True)
        if isinstance(text, bytes):
            return HeaderParser().parsestr(text.decode("utf-8", "replace"), headersonly=True)
    return None


def original_in(parts: Parts) -> Original | None:
    """The headers of the returned or quoted message, from the first part that holds them."""
    for part, kind in parts:
        headers = headers_of(part, kind)
        if headers is not None:
            return Original(
                return_path=clean(headers.get("return-path", ""), 300),
                message_id=clean(headers.get("message-id", ""), 300),
                list_unsubscribe=clean(headers.get("list-unsubscribe", ""), 2000),
                to=clean(headers.get("to", ""), 300),
            )
    return None


def text_of(parts: Parts, limit: int = 20_000) -> str:
    """The first text/plain part, decoded, bounded: what a human-readable bounce says."""
    for part, kind in parts:
        if kind == "text/plain" and not part.is_multipart():
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    return raw[:limit].decode(charset, "replace")
                except LookupError:
                    return raw[:limit].decode("utf-8", "replace")
    return ""
