"""Delivery backends: one small interface (open, send, close), interchangeable like Django's mail backends."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from .base import Backend, SendResult
from .outbox import OutboxBackend
from .smtp import SmtpBackend

__all__ = ["Backend", "OutboxBackend", "SendResult", "SmtpBackend", "backend_for"]


def backend_for(config: Config, batch: str) -> Backend:
    """The configured backend; `batch` names the outbox folder (campaign key or test-<time>)."""
    if config.delivery.backend == "smtp":
        return SmtpBackend(config)
    return OutboxBackend(Path(config.path("outbox")), batch)
