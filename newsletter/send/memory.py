"""An in-memory transport for fast tests: it keeps what it was given and fails when told to.

`faults(recipient, delivered_so_far)` may return an Attempt to answer instead of accepting the
message (a 451, a 550, a dropped connection, a fatal refusal); `open_error` makes every `open` fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import DeliveryError
from .transport import Attempt, AttemptKind


@dataclass
class MemoryOutbox:
    """What every MemoryTransport of a test shares: the delivered messages and the fault script."""

    delivered: list[tuple[str, str, bytes]] = field(default_factory=list)
    faults: Callable[[str, int], Attempt | None] | None = None
    open_error: str = ""
    opens: int = 0

    def recipients(self) -> list[str]:
        return [recipient for _sender, recipient, _data in self.delivered]


class MemoryTransport:
    def __init__(self, outbox: MemoryOutbox) -> None:
        self.outbox = outbox
        self._open = False

    @property
    def connected(self) -> bool:
        return self._open

    def describe(self) -> str:
        return "memory"

    async def open(self) -> None:
        self.outbox.opens += 1
        if self.outbox.open_error:
            raise DeliveryError(self.outbox.open_error)
        self._open = True

    async def send(self, sender: str, recipient: str, data: bytes) -> Attempt:
        if not self._open:
            try:
                await self.open()
            except DeliveryError as exc:
                return Attempt(AttemptKind.TRANSIENT, f"connection: {exc}", reconnect=True)
        if self.outbox.faults is not None:
            fault = self.outbox.faults(recipient, len(self.outbox.delivered))
            if fault is not None:
                if fault.reconnect:
                    self._open = False
                return fault
        self.outbox.delivered.append((sender, recipient, data))
        return Attempt(AttemptKind.SENT, "250 accepted")

    async def reset(self) -> None:
        self._open = False

    async def close(self) -> None:
        self._open = False
