"""What an SMTP reply (or a failure to get one) means: sent, retry later, never again, or stop.

The one place that reads SMTP replies (the SMTP transport calls it): transient (4xx, 552,
connection trouble), permanent (5xx: the mailbox), fatal (the campaign cannot go on: a refused
login, a refused sender), each with a one-line explanation for the user.
"""

from __future__ import annotations

import asyncio
import re

import aiosmtplib

from ..config import Config
from ..errors import DeliveryError
from .transport import Attempt, AttemptKind

TRANSIENT, PERMANENT, FATAL = AttemptKind.TRANSIENT, AttemptKind.PERMANENT, AttemptKind.FATAL
_POLICY = re.compile(r"^\s*5\.7\.\d")  # 5.7.x: authentication / policy, not the mailbox


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
        return _by_code(refused.code, refused.message, per_recipient=True)
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
        error = DeliveryError(
            f"the server refuses the sender {exc.sender!r} ({_reply(exc.code, exc.message)}); "
            f"check [newsletter] from and that the relay allows it"
        )
        return Attempt(FATAL, _reply(exc.code, exc.message), error=error)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        if exc.code >= 500:
            return Attempt(FATAL, _reply(exc.code, exc.message), error=connect_error(config, exc) if config else None)
        return Attempt(TRANSIENT, _reply(exc.code, exc.message), reconnect=True)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, exc.message, per_recipient=True)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        error = connect_error(config, exc) if config else DeliveryError(str(exc))
        return Attempt(FATAL, str(exc), error=error)
    if isinstance(exc, (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError, EOFError)):
        return Attempt(TRANSIENT, f"connection: {exc or type(exc).__name__}", reconnect=True)
    if isinstance(exc, ValueError):  # aiosmtplib refuses an address it cannot put on the wire
        return Attempt(PERMANENT, f"invalid address: {exc}")
    raise exc


def _by_code(code: int, message: str, per_recipient: bool) -> Attempt:
    reply = _reply(code, message)
    if code == 421:
        return Attempt(TRANSIENT, reply, reconnect=True)
    if 400 <= code < 500 or code == 552:  # 552: mailbox full (RFC 5321 says treat as temporary)
        return Attempt(TRANSIENT, reply)
    if code >= 500:
        suppress = per_recipient and code not in (530, 535) and not _POLICY.match(message)
        return Attempt(PERMANENT, reply, suppress=suppress)
    return Attempt(TRANSIENT, reply, reconnect=True)  # a nonsense code: start over
