"""The configured transport: how many connections, and how to make one."""

from __future__ import annotations

from collections.abc import Callable

from ..config import Config
from .outbox import OutboxTransport
from .transport import Transport


def wire_form(config: Config) -> bool:
    """Whether messages should be built in SMTP's wire form (the SMTP transport then sends them as they are)."""
    if config.delivery.backend != "smtp":
        return False
    from .smtp_wire import wire_supported

    return wire_supported()


def transport_for(config: Config, batch: str) -> tuple[int, Callable[[], Transport]]:
    """(connections, factory); `batch` names the outbox folder (campaign key or test-<time>)."""
    if config.delivery.backend == "smtp":
        from .smtp import SmtpTransport  # aiosmtplib only when it is used

        wire = wire_form(config)
        return config.smtp.connections, lambda: SmtpTransport(config, wire=wire)
    outbox = OutboxTransport(config.path("outbox"), batch)  # one folder, written one file at a time
    return 1, lambda: outbox


def describe_transport(config: Config) -> str:
    if config.delivery.backend == "smtp":
        s = config.smtp
        return f"smtp {s.host}:{s.port} ({s.security}, {s.connections} connections" + (
            f", {s.rate:g}/s)" if s.rate else ")"
        )
    return f"outbox {config.path('outbox')}/"
