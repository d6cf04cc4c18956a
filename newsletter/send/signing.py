"""DKIM's RSA step for a connection's batch, in worker processes, so the other core helps.

An RSA-2048 signature costs about 1 ms of CPU here, against about 0.3 ms for everything else a
message needs, and `cryptography` holds the GIL while it signs: threads would not help. So each
connection builds its batch of messages unsigned, prepares what to sign (header and body hashes:
cheap), sends the few hundred bytes per message to a worker process and awaits the signatures,
while the event loop serves the other connections. The worker loads the key itself from the key
file; nothing but hashes and signatures crosses the pipe. A worker that dies leaves the rest of
the run signing in this process. Ed25519 (0.06 ms) and small sends stay in this process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from ..errors import NewsletterError
from ..render.dkim import DkimSigner, finish, load_key, private_sign
from .pool import Job

# Fewer messages than this are signed in this process: starting a worker costs about 0.2 s.
MIN_MESSAGES = 500

_key: Any = None
_algorithm = ""


def _start_worker(path: str, algorithm: str) -> None:
    """In the worker: load the key once; Ctrl-C and SIGTERM are the parent's to handle."""
    global _key, _algorithm
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _key, _algorithm = load_key(Path(path), algorithm, "signing process"), algorithm


def _sign_all(data: list[bytes]) -> list[bytes]:
    return [private_sign(_key, _algorithm, item) for item in data]


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class SigningPool:
    """Builds and signs a batch: `build(job)` makes the unsigned message, the workers sign it."""

    def __init__(self, signer: DkimSigner, wire: bool, build: Callable[[Job], bytes], workers: int) -> None:
        self.signer = signer
        self.wire = wire
        self.build = build
        # spawn, not fork: this process has threads (the lock's heartbeat) that a fork would copy mid-work.
        self.executor: ProcessPoolExecutor | None = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(str(signer.key_file), signer.algorithm),
        )
        for _ in range(workers):  # start the workers now, while the connections open: not at the first batch
            self.executor.submit(_sign_all, [])

    @classmethod
    def worth_it(cls, signer: DkimSigner | None, messages: int) -> bool:
        """RSA, a send big enough to pay for starting a worker, and a second core to run it on."""
        return (
            signer is not None
            and signer.algorithm == "rsa-sha256"
            and signer.key_file is not None
            and messages >= MIN_MESSAGES
            and cpus() > 1
        )

    async def build_batch(self, chunk: list[Job]) -> list[bytes | NewsletterError]:
        built: list[bytes | NewsletterError] = []
        prepared: list[tuple[int, bytes, bytes]] = []  # (index in built, DKIM header so far, data to sign)
        for job in chunk:
            try:
                message = self.build(job)
            except NewsletterError as exc:  # e.g. a CR/LF in a name: this row only
                built.append(exc)
                continue
            unsigned, data = self.signer.prepare(message, wire=self.wire)
            prepared.append((len(built), unsigned, data))
            built.append(message)
        signatures = await self._sign([data for _index, _unsigned, data in prepared])
        for (index, unsigned, _data), signature in zip(prepared, signatures, strict=True):
            built[index] = finish(unsigned, signature, built[index])  # type: ignore[arg-type]
        return built

    async def _sign(self, data: list[bytes]) -> list[bytes]:
        if self.executor is not None and data:
            try:
                return await asyncio.get_running_loop().run_in_executor(self.executor, _sign_all, data)
            except BrokenProcessPool:  # a worker died: the rest of the run signs here
                self.close()
        return [private_sign(self.signer.key, self.signer.algorithm, item) for item in data]

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
