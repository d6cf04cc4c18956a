"""What an SMTP reply (or a failure to get one) means: sent, retry later, never again, pause, or stop.

The one place that reads SMTP replies (the SMTP transport calls it). A 5xx is read by its enhanced
status code (RFC 3463) before its number: only the recipient's permanent failures (5.1.x addressing,
5.2.1 a disabled mailbox) say the mailbox is gone and suppress it; quota, rate, policy, content and
system refusals (5.3.x to 5.7.x, a refused sender's address 5.1.7/5.1.8, a message too big) are the
relay's, and pause the campaign without suppressing anyone. A reply without an enhanced code is the
mailbox's at RCPT (550, 551, 553: what servers that know no enhanced codes say for an unknown user)
and the relay's at DATA, where the recipient was already accepted. Transient: 4xx, 552 (mailbox
full; RFC 5321 says to treat it as temporary), connection trouble. Fatal: a refused login or sender.
"""

from __future__ import annotations

import asyncio
import re

import aiosmtplib

from ..config import Config
from ..errors import DeliveryError
from .transport import Attempt, AttemptKind

TRANSIENT, PERMANENT, RELAY, FATAL = AttemptKind.TRANSIENT, AttemptKind.PERMANENT, AttemptKind.RELAY, AttemptKind.FATAL
_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_MAILBOX_GONE = {(1, n) for n in range(100)} - {(1, 7), (1, 8)} | {(2, 1)}  # 5.1.7/5.1.8: the sender's address
_BARE_MAILBOX = (550, 551, 553)  # without an enhanced code, at RCPT: no such user


def enhanced(message: str) -> tuple[int, int] | None:
    """(subject, detail) of an RFC 3463 enhanced status code at the start of a reply's text."""
    found = _ENHANCED.match(message)
    return (int(found.group(2)), int(found.group(3))) if found else None


def connect_error(config: Config, exc: Exception) -> DeliveryError:
    """A one-line explanation of why the server could not be used at all."""
    where = f"{config.smtp.host}:{config.smtp.port}"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"SMTP login to {where} as {config.smtp.username!r} failed ({exc.code} {exc.message}); "
            f"check [smtp] username and NEWSLETTER_SMTP_PASSWORD"
        )
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryError(f"{where}: {exc}; check [smtp] security (starttls, tls or none) and port")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"{where}: the server refused ({exc.code} {exc.message})")
    detail = str(exc) or type(exc).__name__
    return DeliveryError(f"cannot connect to SMTP server {where} ({detail}); check [smtp] host, port and security")


def _reply(code: int, message: str) -> str:
    return f"{code} {message}".strip()


def classify(exc: BaseException, config: Config | None = None) -> Attempt:
    """Transient or permanent, from an exception aiosmtplib (or the socket) raised."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients[0]
        return _by_code(refused.code, refused.message, at_rcpt=True)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError) or (
        isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == 530
    ):
        error = connect_error(config, exc) if config else DeliveryError(_reply(exc.code, exc.message))
        if exc.code == 530 and config is not None:
            error = DeliveryError(
                f"{config.smtp.host}:{config.smtp.port} requires a login ({_reply(exc.code, exc.message)}); "
                f"set [smtp] username and NEWSLETTER_SMTP_PASSWORD"
            )
        return Attempt(FATAL, _reply(exc.code, exc.message), error=error)
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        if 400 <= exc.code < 500:
            return Attempt(TRANSIENT, _reply(exc.code, exc.message), reconnect=exc.code == 421)
        code = enhanced(exc.message)
        if (code is not None and code[0] in (3, 4, 5, 6)) or code == (7, 0):  # quota, system, policy at MAIL
            return Attempt(RELAY, _reply(exc.code, exc.message))
        error = DeliveryError(
            f"the server refuses the sender {exc.sender!r} ({_reply(exc.code, exc.message)}); "
            f"check [newsletter] from and that the relay allows it"
        )
        return Attempt(FATAL, _reply(exc.code, exc.message), error=error)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        if exc.code >= 500:
            return Attempt(FATAL, _reply(exc.code, exc.message), error=connect_error(config, exc) if config else None)
        return Attempt(TRANSIENT, _reply(exc.code, exc.message), reconnect=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):  # DATA (SMTPDataError), or another command
        return _by_code(exc.code, exc.message, at_rcpt=False)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        error = connect_error(config, exc) if config else DeliveryError(str(exc))
        return Attempt(FATAL, str(exc), error=error)
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, EOFError)):
        return Attempt(TRANSIENT, f"connection: {exc or type(exc).__name__}", reconnect=True)
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address it cannot put on the wire
        return Attempt(PERMANENT, f"invalid address: {exc}")
    raise exc


def _by_code(code: int, message: str, at_rcpt: bool) -> Attempt:
    reply = _reply(code, message)
    if code == 421:
        return Attempt(TRANSIENT, reply, reconnect=True)
    if 400 <= code < 500:
        return Attempt(TRANSIENT, reply)
    if not 500 <= code < 600:
        return Attempt(TRANSIENT, reply, reconnect=True)  # a nonsense code: start over
    found = enhanced(message)
    status = found if found is not None and found != (0, 0) else None
    if status == (2, 2) or (code == 552 and (status is None or status[0] != 3)):
        return Attempt(TRANSIENT, reply)  # mailbox full (552 also means "try later": RFC 5321 4.5.3.1.10)
    if status is None:
        if at_rcpt and code in _BARE_MAILBOX:
            return Attempt(PERMANENT, reply, suppress=True)
        if at_rcpt and code == 501:  # the address's syntax: this one only
            return Attempt(PERMANENT, reply)
        return Attempt(RELAY, reply)
    if status in _MAILBOX_GONE:
        return Attempt(PERMANENT, reply, suppress=True)
    if status[0] == 2 and status != (2, 3):  # 5.2.0, 5.2.4: this mailbox refused this message, but is not gone
        return Attempt(PERMANENT, reply)
    return Attempt(RELAY, reply)  # 5.1.7/8, 5.2.3 and 5.3.x to 5.7.x: quota, rate, policy, content, system
