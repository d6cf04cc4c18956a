"""The default backend: every message becomes an .eml file under outbox/<batch>/ (no server needed)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import DeliveryError
from .base import BackendBase, SendResult

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def safe_component(text: str, max_len: int = 80) -> str:
    """A file or folder name that is safe on every OS: never empty, '..', hidden or a path."""
    return _UNSAFE.sub("_", text).strip("._")[:max_len] or "message"


def safe_name(text: str) -> str:
    """safe_component plus a short hash, so two inputs that clean up alike stay distinct."""
    digest = hashlib.sha256(text.lower().encode()).hexdigest()[:8]
    return f"{safe_component(text)}-{digest}"


class OutboxBackend(BackendBase):
    def __init__(self, root: Path, batch: str) -> None:
        self.folder = root / safe_component(batch)

    def describe(self) -> str:
        return f"outbox {self.folder}/"

    async def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(f"{self.folder}: cannot create the outbox folder ({exc.strerror})") from None

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult:
        path = self.folder / f"{safe_name(recipients[0])}.eml"
        tmp = path.with_suffix(".eml.tmp")
        try:
            # Written whole then renamed: a crash never leaves half a message behind.
            with tmp.open("wb") as fh:
                fh.write(message)
            os.replace(tmp, path)
        except OSError as exc:
            raise DeliveryError(f"{path}: cannot write ({exc.strerror})") from None
        return SendResult(recipients[0], str(path))
