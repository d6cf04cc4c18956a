"""Bounce fixtures (tests/data/bounces) filled in for a real send, and a Maildir to deliver them into.

A fixture is a real-world report with placeholders for what only the send knows: `__VERP__` (the
envelope sender the SMTP server saw), `__RCPT__`, `__MESSAGE_ID__` and `__LIST_UNSUBSCRIBE__`.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

from .helpers import DATA
from .smtpd import Received

FIXTURES = DATA / "bounces"
SECRET = "bounce-secret-0123456789abcdefghijklmnop"
BOUNCES = {"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_BOUNCES_ADDRESS": "bounces@example.com"}
_counter = itertools.count()


@dataclass(frozen=True)
class Sent:
    """One message the SMTP server accepted: what a bounce of it refers to."""

    recipient: str
    verp: str
    message_id: str
    list_unsubscribe: str


def sent_by_recipient(received: list[Received]) -> dict[str, Sent]:
    found = {}
    for item in received:
        msg = item.message
        recipient = item.rcpt_tos[0]
        found[recipient] = Sent(recipient, item.mail_from, str(msg["Message-ID"]), str(msg["List-Unsubscribe"]))
    return found


def fill(name: str, sent: Sent | None = None, *, verp: str = "", rcpt: str = "", message_id: str = "") -> bytes:
    """A fixture with its placeholders filled in, CRLF line ends (as on the wire)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    values = {
        "__VERP__": verp or (sent.verp if sent else "bounces@example.com"),
        "__RCPT__": rcpt or (sent.recipient if sent else "nobody@example.org"),
        "__MESSAGE_ID__": message_id or (sent.message_id if sent else "<unknown@example.com>"),
        "__LIST_UNSUBSCRIBE__": sent.list_unsubscribe if sent else "<mailto:newsletter@example.com>",
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def make_maildir(root: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def deliver(maildir: Path, data: bytes, name: str = "") -> Path:
    """Deliver one message the Maildir way: written in tmp/, renamed into new/."""
    unique = f"{1795510800 + next(_counter)}.M{os.getpid()}P{next(_counter)}.test{('-' + name) if name else ''}"
    tmp = maildir / "tmp" / unique
    tmp.write_bytes(data)
    target = maildir / "new" / unique
    os.replace(tmp, target)
    return target
