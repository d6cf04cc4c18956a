"""SMTP servers that misbehave on purpose, for bench/chaos.py: a real aiosmtpd behind a TCP proxy.

The handler (aiosmtpd, in its own thread) answers RCPT and DATA as a `Fault` says: a quota reply
after N messages, 550 or 552 for some recipients, greylisting, a 421 every 10th, a connection
closed after the message was taken but before the reply, or a DATA that is never answered. The
proxy in front of it (asyncio, in another thread) breaks the transport: it can be down (connection
refused), accept and never greet, cut connections at random in the middle of a message, or die and
come back. Every message the server takes is recorded with its Message-ID, so a bench can count
who got it once, twice (and whether the copies share a Message-ID) or never.
"""

from __future__ import annotations

import asyncio
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fault:
    """What the server does wrong; `clear()` is the operator fixing it (the quota resets, the mailbox empties)."""

    kind: str = "accept"
    after: int = 0  # quota faults: messages taken before the quota reply
    refuse: frozenset[str] = frozenset()  # 550 5.1.1 / 552 5.2.2 addresses
    every: int = 10  # "421": every n-th RCPT
    greylist: float = 0.5  # seconds a new recipient is told to come back later
    cleared: bool = False
    _seen: dict[str, float] = field(default_factory=dict)
    _rcpts: int = 0

    def clear(self) -> None:
        self.cleared = True

    def rcpt(self, taken: int, address: str) -> str | None:
        if self.cleared:
            return None
        self._rcpts += 1
        if self.kind == "quota-rcpt" and taken >= self.after:
            return "550 5.4.5 Daily user sending quota exceeded"
        if self.kind == "550" and address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if self.kind == "552" and address in self.refuse:
            return "552 5.2.2 Mailbox full"
        if self.kind == "421" and self._rcpts % self.every == 0:
            return "421 4.7.0 Too many messages, closing connection"
        if self.kind == "greylist":
            first = self._seen.setdefault(address, time.monotonic())
            if time.monotonic() - first < self.greylist:
                return "451 4.7.1 Greylisted, please try again later"
        return None


class FaultyServer:
    """aiosmtpd on 127.0.0.1 that takes messages (after `delay` seconds each) unless its fault says otherwise."""

    def __init__(self, fault: Fault, delay: float = 0.002) -> None:
        self.fault = fault
        self.delay = delay
        self.received: list[tuple[str, str]] = []  # (recipient, Message-ID)
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def taken(self) -> int:
        with self.lock:
            return len(self.received)

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(r for r, _ in self.received)

    def message_ids(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        with self.lock:
            for rcpt, mid in self.received:
                found.setdefault(rcpt, set()).add(mid)
        return found

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.fault.rcpt(self.taken(), address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        fault = self.fault
        if self.delay:
            await asyncio.sleep(self.delay)
        if not fault.cleared and fault.kind == "quota-data" and self.taken() >= fault.after:
            return "550 5.4.5 Daily user sending quota exceeded"
        if fault.kind == "hang-data" and not fault.cleared:
            while not fault.cleared:  # never answers (the client's timeout ends each try)
                await asyncio.sleep(0.1)
            return "451 4.3.0 Try again"
        found = _MESSAGE_ID.search(bytes(envelope.original_content or b""))
        mid = found.group(1).decode() if found else ""
        with self.lock:
            number = len(self.received) + 1
            self.received.extend((rcpt, mid) for rcpt in envelope.rcpt_tos)
        if not fault.cleared and fault.kind == "close-after-data" and number % 50 == 0:
            assert server.transport is not None
            server.transport.close()  # taken, but the client never hears so: it will try again
        return "250 2.0.0 Ok: queued"

    def __enter__(self) -> FaultyServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


class Proxy:
    """A TCP front for the server: "pass", "down" (refused), "hang" (never greets) or "cut" (random drops)."""

    def __init__(self, upstream: int, seed: int = 1) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.mode = "pass"
        self.cut_chance = 0.3  # "cut": share of connections dropped somewhere in their first 60 KB
        self.cuts = 0
        self.rng = random.Random(seed)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.open: set[asyncio.StreamWriter] = set()

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        if self.server is None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _stop_listening(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.open):
            writer.close()

    def set_mode(self, mode: str) -> None:
        """Switch now; "down" also drops every open connection (a server that dies)."""
        self.mode = mode
        self._call(self._stop_listening() if mode == "down" else self._listen())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            if self.mode == "hang":  # until the mode changes; then the client sees the connection close
                while self.mode == "hang" and not writer.is_closing():
                    await asyncio.sleep(0.1)
                return
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
            self.open.add(up_writer)
            limit = self.rng.randint(1_000, 60_000) if self.mode == "cut" and self.rng.random() < self.cut_chance else 0

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cut: int) -> None:
                moved = 0
                while data := await src.read(65536):
                    moved += len(data)
                    if cut and moved >= cut:
                        dst.write(data[: len(data) - (moved - cut)])
                        self.cuts += 1
                        writer.close()
                        dst.close()
                        return
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer, limit), pipe(up_reader, writer, 0), return_exceptions=True)
        except OSError:
            pass
        finally:
            for end in (writer, up_writer):
                if end is not None:
                    self.open.discard(end)
                    end.close()

    def __enter__(self) -> Proxy:
        self.thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._stop_listening())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
