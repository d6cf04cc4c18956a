"""SMTP over aiosmtplib: one connection (connect, STARTTLS or TLS, login, send), and the Backend on it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiosmtplib

from ..config import Config
from ..errors import DeliveryError
from .base import BackendBase, SendResult
from .replies import classify, connect_error


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


class SmtpConnection:
    """One aiosmtplib client; `reset` drops it so the next message opens a fresh one."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.client: aiosmtplib.SMTP | None = None

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def open(self) -> None:
        client = client_for(self.config)
        await client.connect()
        self.client = client

    async def send(self, sender: str, recipient: str, data: bytes) -> str:
        assert self.client is not None
        _refused, reply = await self.client.sendmail(sender, [recipient], data)
        return reply

    async def reset(self) -> None:
        if self.client is not None:
            self.client.close()
        self.client = None

    async def close(self) -> None:
        if self.client is not None and self.client.is_connected:
            try:
                await asyncio.wait_for(self.client.quit(), timeout=5)
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                self.client.close()
        self.client = None


class SmtpBackend(BackendBase):
    """The Backend interface over one SmtpConnection (send-test); replies read as the send engine reads them."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.connection = SmtpConnection(config)

    def describe(self) -> str:
        return f"smtp {self.config.smtp.host}:{self.config.smtp.port}"

    async def open(self) -> None:
        try:
            await self.connection.open()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise connect_error(self.config, exc) from None

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        (recipient,) = recipients
        if not self.connection.connected:
            await self.open()
        try:
            reply = await self.connection.send(sender, recipient, message)
        except Exception as exc:
            attempt = classify(exc, self.config)
            if attempt.error is not None:
                raise attempt.error from None
            raise DeliveryError(f"{recipient}: not delivered, {attempt.kind} failure ({attempt.reply})") from None
        return SendResult(recipient, f"{self.describe()}: {reply}")

    async def close(self) -> None:
        await self.connection.close()
