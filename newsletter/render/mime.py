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
from email import policy
from email.utils import formataddr, formatdate

from ..config import Config
from ..content.subscribers import Subscriber
from ..errors import HeaderInjectionError
from .issue import RenderedIssue
from .personal import Prepared, escape_html, field_values
from .unsubscribe import UnsubscribeLinks, Unsubscriber

CRLF = b"\r\n"
_SOFT_BREAK = b"=\r\n"


def check_header(value: str, what: str) -> str:
    """Refuse CR/LF (header injection) in anything that becomes a header; `what` names the source."""
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"{what}: contains a line break (CR/LF), which would forge mail headers; remove it")
    return value


def message_id_digest(message_key: str, email: str) -> str:
    """The left part of a campaign message's Message-ID (a bounce's quoted original names its campaign)."""
    return hashlib.sha256(f"{message_key}\0{email.lower()}".encode()).hexdigest()[:32]


def list_id(config: Config) -> str:
    nl = config.newsletter
    if nl.list_id:
        return nl.list_id
    slug = re.sub(r"[^a-z0-9]+", "-", nl.name.lower()).strip("-") or "newsletter"
    return f"{slug}.{nl.domain}"


def _fold(name: str, value: str) -> bytes:
    """One header line, RFC 2047-encoded when non-ASCII, folded at 78 columns."""
    folded: str = policy.SMTP.header_factory(name, value).fold(policy=policy.SMTP)
    return folded.encode("ascii")


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


class MessageFactory:
    """Turns one RenderedIssue into per-subscriber RFC 5322 messages (bytes with CRLF)."""

    def __init__(
        self,
        rendered: RenderedIssue,
        config: Config,
        *,
        message_key: str | None = None,
        unsubscriber: Unsubscriber | None = None,
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
            _fold("From", nl.from_),
            _fold("Subject", rendered.subject),
            _fold("Date", formatdate(localtime=True)),
            _fold("List-Id", f"{nl.name} <{self.list_id}>"),
        ]
        if nl.reply_to:
            headers.append(_fold("Reply-To", nl.reply_to))
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
        self.text_part = Prepared(rendered.text, rendered.marker, piece=_qp_piece, value=_qp_piece, cache_values=True)
        self.html_part = Prepared(
            rendered.html, rendered.marker, piece=_qp_piece, value=_qp_html_value, cache_values=True
        )

    def message_id(self, email: str) -> str:
        """Stable per campaign and address, so a message resent after a crash can be deduplicated."""
        if self.message_key is None:
            return f"<{secrets.token_hex(16)}@{self.domain}>"
        return f"<{message_id_digest(self.message_key, email)}@{self.domain}>"

    def recipient_headers(self, subscriber: Subscriber, links: UnsubscribeLinks) -> bytes:
        where = f"subscribers line {subscriber.line}" if subscriber.line else "recipient"
        email = check_header(subscriber.email, f"{where}: email")
        name = check_header(subscriber.name, f"{where}: name")
        to = formataddr((name, email), charset="utf-8") if name else email
        lines = [
            f"To: {to}\r\n".encode("ascii", "strict"),
            f"Message-ID: {self.message_id(email)}\r\n".encode(),
            # Written raw: folding would RFC 2047-encode a long URL, which providers do not decode.
            f"List-Unsubscribe: {check_header(links.header, 'List-Unsubscribe')}\r\n".encode("ascii"),
        ]
        if links.one_click:
            lines.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        return b"".join(lines)

    def build(self, subscriber: Subscriber) -> bytes:
        links = self.unsubscriber.links(subscriber.email)
        values = field_values(self.fields, subscriber.fields, links.url)
        return b"".join(
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
