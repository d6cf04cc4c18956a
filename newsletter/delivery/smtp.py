"""SMTP over aiosmtplib: connect, STARTTLS or TLS, login, send."""

from __future__ import annotations

from collections.abc import Sequence

import aiosmtplib

from ..config import Config
from ..errors import DeliveryError
from .base import BackendBase, SendResult


def client_for(config: Config) -> aiosmtplib.SMTP:
    """A configured (not yet connected) client; one per connection."""
    smtp = config.smtp
    return aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        timeout=smtp.timeout,
        use_tls=smtp.security == "tls",
        start_tls=smtp.security == "starttls",
        username=smtp.username or None,
        password=(config.smtp_password or None) if smtp.username else None,
    )


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


class SmtpBackend(BackendBase):
    """One connection, reused for every message (the send engine runs several of these)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.client: aiosmtplib.SMTP | None = None

    def describe(self) -> str:
        return f"smtp {self.config.smtp.host}:{self.config.smtp.port}"

    async def open(self) -> None:
        client = client_for(self.config)
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise connect_error(self.config, exc) from None
        self.client = client

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        if self.client is None or not self.client.is_connected:
            await self.open()
        assert self.client is not None
        try:
            _errors, reply = await self.client.sendmail(sender, list(recipients), message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            raise DeliveryError(
                f"{refused.recipient}: refused by the server ({refused.code} {refused.message})"
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{recipients[0]}: the server refused the message ({exc.code} {exc.message})") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise connect_error(self.config, exc) from None
        return SendResult(recipients[0], f"{self.describe()}: {reply}")

    async def close(self) -> None:
        if self.client is not None and self.client.is_connected:
            try:
                await self.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                self.client.close()
        self.client = None
