"""The interface every delivery backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self


@dataclass(frozen=True)
class SendResult:
    """Where one message went: a file path or the server's reply."""

    recipient: str
    detail: str


class Backend(Protocol):
    """open() once, send() many times, close() once; usable as `async with backend:`."""

    def describe(self) -> str: ...

    async def open(self) -> None: ...

    async def send(self, sender: str, recipients: Sequence[str], message: bytes) -> SendResult: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class BackendBase:
    """Context-manager plumbing shared by the backends."""

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
