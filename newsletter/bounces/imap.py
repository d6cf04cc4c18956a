"""An IMAP mailbox (IMAPClient over the stdlib's imaplib): TLS by default, certificates verified.

Messages are read with BODY.PEEK (not marked seen) up to MAX_BYTES each, in chunks, and processed
ones are moved to the processed folder with MOVE (RFC 6851), or COPY, \\Deleted and EXPUNGE on a
server without it. The password comes only from NEWSLETTER_BOUNCES_PASSWORD.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from ..config import Config
from ..errors import MailboxError, one_line
from .message import MAX_BYTES, Incoming

TIMEOUT = 30.0
CHUNK = 50
_PARTIAL = f"BODY.PEEK[]<0.{MAX_BYTES}>"


def _said(exc: BaseException) -> str:
    """What the server said: imaplib passes its bytes along, and IMAPClient their repr()."""
    arg = exc.args[0] if exc.args else ""
    text = one_line(arg.decode("utf-8", "replace") if isinstance(arg, bytes) else arg)
    quoted = re.fullmatch(r"b(['\"])(.*)\1", text)
    return (quoted.group(2) if quoted else text) or type(exc).__name__


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted: {exc.verify_message}"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT:.0f} s"
    return _said(exc)


class ImapMailbox:
    def __init__(self, client: IMAPClient, config: Config) -> None:
        self.client = client
        section = config.bounces
        self.where = f"imap{'s' if section.imap_security == 'tls' else ''}://{section.imap_user}@{section.imap_host}"
        self.where += f":{section.port}/{section.imap_folder}"
        self.folder = section.imap_folder
        self.processed = section.processed_folder
        self._made = False

    @classmethod
    def connect(cls, config: Config) -> ImapMailbox:
        section = config.bounces
        host, port = section.imap_host, section.port
        if not config.bounces_password:
            raise MailboxError(
                "NEWSLETTER_BOUNCES_PASSWORD is not set: the IMAP password of [bounces] imap_user is read only "
                "from the environment; set it"
            )
        context = ssl.create_default_context()
        try:
            client = IMAPClient(
                host, port=port, ssl=section.imap_security == "tls", ssl_context=context, timeout=TIMEOUT
            )
            if section.imap_security == "starttls":
                client.starttls(context)
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(
                f"{host}:{port}: cannot connect to the IMAP server ({_reason(exc)}); check [bounces] imap_host, "
                f"imap_port and imap_security"
            ) from None
        try:
            client.login(section.imap_user, config.bounces_password)
        except LoginError as exc:
            _quietly_close(client)
            raise MailboxError(
                f"{host}: the IMAP server refused the login of {section.imap_user} ({_said(exc)}); check "
                f"[bounces] imap_user and NEWSLETTER_BOUNCES_PASSWORD"
            ) from None
        except (OSError, IMAPClientError) as exc:
            _quietly_close(client)
            raise MailboxError(f"{host}:{port}: IMAP login failed ({_reason(exc)})") from None
        mailbox = cls(client, config)
        try:
            client.select_folder(section.imap_folder)
        except IMAPClientError as exc:
            mailbox.close()
            raise MailboxError(
                f"{host}: cannot open the IMAP folder {section.imap_folder!r} ({_said(exc)}); check "
                f"[bounces] imap_folder"
            ) from None
        return mailbox

    def describe(self) -> str:
        return self.where

    def _fail(self, exc: BaseException) -> MailboxError:
        return MailboxError(f"{self.where}: the IMAP server failed mid-way ({_reason(exc)}); run it again")

    def messages(self) -> Iterator[tuple[str, Incoming]]:
        try:
            uids = sorted(self.client.search(["NOT", "DELETED"]))
        except (OSError, IMAPClientError) as exc:
            raise self._fail(exc) from None
        for start in range(0, len(uids), CHUNK):
            chunk = uids[start : start + CHUNK]
            try:
                found: dict[int, dict[bytes, Any]] = self.client.fetch(chunk, ["RFC822.SIZE", _PARTIAL])
            except (OSError, IMAPClientError) as exc:
                raise self._fail(exc) from None
            for uid in chunk:
                item = found.get(uid)
                if item is None:  # expunged meanwhile by another client
                    continue
                data = next((v for k, v in item.items() if k.startswith(b"BODY[]")), None) or b""
                size = int(item.get(b"RFC822.SIZE", len(data)))
                yield str(uid), Incoming(bytes(data), truncated=size > len(data))

    def done(self, refs: Sequence[str]) -> None:
        if not refs:
            return
        uids = [int(ref) for ref in refs]
        client = self.client
        try:
            if not self._made:
                if not client.folder_exists(self.processed):
                    client.create_folder(self.processed)
                self._made = True
            if client.has_capability("MOVE"):
                client.move(uids, self.processed)
            else:
                client.copy(uids, self.processed)
                client.delete_messages(uids)
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge(uids)
                else:
                    client.expunge()
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(
                f"{self.where}: cannot move processed messages to {self.processed!r} ({_reason(exc)}); check "
                f"[bounces] processed_folder"
            ) from None

    def close(self) -> None:
        _quietly_close(self.client)


def _quietly_close(client: IMAPClient) -> None:
    try:
        client.logout()
    except (OSError, IMAPClientError):
        with contextlib.suppress(OSError, IMAPClientError):
            client.shutdown()
