"""MIME assembly: the encoded parts are prepared once per issue, each message only fills in values.

Building a stdlib EmailMessage per subscriber costs milliseconds; here the text and HTML
parts are quoted-printable encoded once, split at the per-subscriber markers, and each message is
a join of prepared bytes with a few short encoded values and headers.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
from collections.abc import Callable
from email.utils import formatdate, parseaddr

from ..config import Config
from ..content.subscribers import Subscriber
from .dkim import signer_for
from .headers import check_header, fold, fold_address
from .issue import RenderedIssue
from .personal import Prepared, escape_html, field_values
from .unsubscribe import UnsubscribeLinks, Unsubscriber

CRLF = b"\r\n"
_SOFT_BREAK = b"=\r\n"
_LEADING_DOT = re.compile(rb"(?m)^\.")


def message_id_digest(message_key: str, email: str) -> str:
    """The left part of a campaign message's Message-ID (a bounce's quoted original names its campaign)."""
    return hashlib.sha256(f"{message_key}\0{email.lower()}".encode()).hexdigest()[:32]


def list_id(config: Config) -> str:
    nl = config.newsletter
    if nl.list_id:
        return nl.list_id
    slug = re.sub(r"[^a-z0-9]+", "-", nl.name.lower()).strip("-") or "newsletter"
    return f"{slug}.{nl.domain}"


def _qp(text: str) -> bytes:
    return binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True).replace(b"\n", CRLF)


def _qp_html_value(value: str) -> bytes:
    return _qp_piece(escape_html(value))


def _qp_piece(text: str) -> bytes:
    """A piece of a part, ending with a soft line break unless it ends a line: pieces join cleanly."""
    if not text:
        return b""
    encoded = _qp(text)
    return encoded if text.endswith("\n") else encoded + _SOFT_BREAK


def dot_stuff(data: bytes) -> bytes:
    """SMTP's transparency (RFC 5321 4.5.2): a line that starts with '.' gets a second one."""
    return _LEADING_DOT.sub(b"..", data)


class MessageFactory:
    """Turns one RenderedIssue into per-subscriber RFC 5322 messages (bytes with CRLF).

    With `wire=True` the bytes are what goes after SMTP's DATA as they are: CRLF line ends (always)
    and dot-stuffed. Every prepared piece starts at the beginning of a line (each ends with a line
    break or a quoted-printable soft break), so each is stuffed once when prepared, and a
    per-subscriber value (a name or a URL may start with '.') when it is filled.
    """

    def __init__(
        self,
        rendered: RenderedIssue,
        config: Config,
        *,
        message_key: str | None = None,
        unsubscriber: Unsubscriber | None = None,
        wire: bool = False,
    ) -> None:
        nl = config.newsletter
        source = str(rendered.issue.articles[0].path) if rendered.issue.articles else "issue"
        check_header(rendered.subject, f"{source}: subject")
        check_header(nl.from_, "[newsletter] from")
        check_header(nl.reply_to, "[newsletter] reply_to")
        check_header(nl.name, "[newsletter] name")
        self.envelope_from = nl.from_address
        self.domain = nl.domain
        self.message_key = message_key
        self.list_id = check_header(list_id(config), "[newsletter] list_id")
        self.unsubscriber = unsubscriber or Unsubscriber(config, self.list_id)
        self.fields = rendered.fields
        boundary = f"=_nl_{secrets.token_hex(12)}"  # "=_" can never occur in quoted-printable text
        headers = [
            fold_address("From", *parseaddr(nl.from_)),
            fold("Subject", rendered.subject),
            fold("Date", formatdate(localtime=True)),
            fold_address("List-Id", nl.name, self.list_id),
        ]
        if nl.reply_to:
            headers.append(fold_address("Reply-To", *parseaddr(nl.reply_to)))
        self.static_headers = b"".join(headers)
        self.mime_headers = (
            b"Auto-Submitted: auto-generated\r\n"
            b"MIME-Version: 1.0\r\n" + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode()
        )
        delimiter = f"--{boundary}\r\n".encode()

        def part_head(subtype: str) -> bytes:
            return (
                delimiter
                + f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode()
                + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            )

        self.text_head = CRLF + part_head("plain")
        self.html_head = CRLF + part_head("html")
        self.closing = f"\r\n--{boundary}--\r\n".encode()
        self.wire = wire
        self.signer = signer_for(config)  # DKIM, when [dkim] is set
        text_piece: Callable[[str], bytes] = _qp_piece
        html_value: Callable[[str], bytes] = _qp_html_value
        if wire:
            text_piece = lambda text: dot_stuff(_qp_piece(text))  # noqa: E731
            html_value = lambda value: dot_stuff(_qp_html_value(value))  # noqa: E731
        self.text_part = Prepared(rendered.text, rendered.marker, piece=text_piece, value=text_piece, cache_values=True)
        self.html_part = Prepared(rendered.html, rendered.marker, piece=text_piece, value=html_value, cache_values=True)

    def message_id(self, email: str) -> str:
        """Stable per campaign and address, so a message resent after a crash can be deduplicated."""
        if self.message_key is None:
            return f"<{secrets.token_hex(16)}@{self.domain}>"
        return f"<{message_id_digest(self.message_key, email)}@{self.domain}>"

    def recipient_headers(self, subscriber: Subscriber, links: UnsubscribeLinks) -> bytes:
        where = f"subscribers line {subscriber.line}" if subscriber.line else "recipient"
        email = check_header(subscriber.email, f"{where}: email")
        name = check_header(subscriber.name, f"{where}: name")
        lines = [
            fold_address("To", name, email),
            f"Message-ID: {self.message_id(email)}\r\n".encode(),
            # Written raw: folding would RFC 2047-encode a long URL, which providers do not decode.
            f"List-Unsubscribe: {check_header(links.header, 'List-Unsubscribe')}\r\n".encode("ascii"),
        ]
        if links.one_click:
            lines.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        return b"".join(lines)

    def build(self, subscriber: Subscriber, *, sign: bool = True) -> bytes:
        """The subscriber's message; DKIM-signed when [dkim] is set, unless `sign` is False (signed elsewhere)."""
        links = self.unsubscriber.links(subscriber.email)
        values = field_values(self.fields, subscriber.fields, links.url)
        message = b"".join(
            [
                self.static_headers,
                self.recipient_headers(subscriber, links),
                self.mime_headers,
                self.text_head,
                *self.text_part.fill(values),
                self.html_head,
                *self.html_part.fill(values),
                self.closing,
            ]
        )
        return message if self.signer is None or not sign else self.signer.sign(message, wire=self.wire)
