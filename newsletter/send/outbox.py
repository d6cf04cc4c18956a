"""The default transport: every message becomes an .eml file under outbox/<batch>/ (no server needed)."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from ..errors import DeliveryError
from ..state.files import private_dir, write_private
from .transport import Attempt, AttemptKind

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def safe_component(text: str, max_len: int = 80) -> str:
    """A file or folder name that is safe on every OS: never empty, '..', hidden or a path."""
    return _UNSAFE.sub("_", text).strip("._")[:max_len] or "message"


def safe_name(text: str) -> str:
    """safe_component plus a short hash, so two inputs that clean up alike stay distinct."""
    digest = hashlib.sha256(text.lower().encode()).hexdigest()[:8]
    return f"{safe_component(text)}-{digest}"


class OutboxTransport:
    def __init__(self, root: Path, batch: str) -> None:
        self.folder = root / safe_component(batch)
        self._open = False

    @property
    def connected(self) -> bool:
        return self._open

    def describe(self) -> str:
        return f"outbox {self.folder}/"

    async def open(self) -> None:
        try:
            private_dir(self.folder)  # the file names are addresses: 0700
        except OSError as exc:
            raise DeliveryError(f"{self.folder}: cannot create the outbox folder ({exc.strerror})") from None
        self._open = True

    async def send(self, sender: str, recipient: str, data: bytes) -> Attempt:
        if not self._open:
            try:
                await self.open()
            except DeliveryError as exc:
                return Attempt(AttemptKind.FATAL, str(exc), error=exc)
        path = self.folder / f"{safe_name(recipient)}.eml"
        tmp = path.with_suffix(".eml.tmp")
        try:
            # Written whole then renamed: a crash never leaves half a message behind. Personal data: 0600.
            write_private(tmp, data)
            os.replace(tmp, path)
        except OSError as exc:
            error = DeliveryError(f"{path}: cannot write ({exc.strerror})")
            return Attempt(AttemptKind.FATAL, str(error), error=error)
        return Attempt(AttemptKind.SENT, str(path))

    async def reset(self) -> None:
        self._open = False

    async def close(self) -> None:
        self._open = False
