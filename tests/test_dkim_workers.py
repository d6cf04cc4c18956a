"""DKIM signatures made in worker processes (send/signing.py) verify like those made in the sender.

A list big enough for the workers, sent to a real SMTP server, every message checked with dkimpy;
and a worker killed mid-send, after which the send signs in its own process and nothing is lost.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from newsletter.content.subscribers import Subscriber
from newsletter.errors import NewsletterError
from newsletter.render.dkim import DkimSigner, load_key
from newsletter.render.mime import MessageFactory
from newsletter.send.pool import Job
from newsletter.send.signing import MIN_MESSAGES, SigningPool, cpus

from .helpers import Cli, config_of, write_list
from .smtpd import SmtpServer

pytestmark = pytest.mark.e2e  # starts worker processes


def _key(folder: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "dkim.key"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(path, 0o600)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def _dns(record: bytes):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl2026._domainkey.privacy-notes.news.", name
        return record

    return lookup


def _configure(cli: Cli, key: Path) -> None:
    cli.env.update(
        {
            "NEWSLETTER_DKIM_DOMAIN": "privacy-notes.news",
            "NEWSLETTER_DKIM_SELECTOR": "nl2026",
            "NEWSLETTER_DKIM_KEY_FILE": str(key),
        }
    )


@pytest.mark.skipif(cpus() < 2, reason="one CPU: the send signs in its own process")
def test_a_big_send_signed_by_workers_verifies(
    cli: Cli, folder: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    build_batch = SigningPool.build_batch

    async def counted(self: SigningPool, chunk: list[Job]) -> list[bytes | NewsletterError]:
        batches.append(len(chunk))
        return await build_batch(self, chunk)

    monkeypatch.setattr(SigningPool, "build_batch", counted)
    key, record = _key(folder)
    write_list(folder, MIN_MESSAGES, cli)
    cli.env.update(smtp_server.env())
    _configure(cli, key)
    result = cli("send", "2026-11-09-tls-certificates", "--yes")
    assert result.exit_code == 0, result.output
    received = smtp_server.handler.received
    assert len(received) == MIN_MESSAGES
    assert sum(batches) == MIN_MESSAGES  # every message went through the workers
    assert len({r.message["DKIM-Signature"] for r in received}) == MIN_MESSAGES  # each its own signature
    for message in received[::25]:  # dkimpy checks in pure Python: a sample of 20
        assert dkim.verify(message.data, dnsfunc=_dns(record)), message.data[:400]


def test_a_killed_worker_leaves_the_signing_to_the_sender(cli: Cli, folder: Path) -> None:
    key, record = _key(folder)
    _configure(cli, key)
    cli.env["NEWSLETTER_NEWSLETTER_BASE_URL"] = "https://news.example.org"
    cli.env["NEWSLETTER_SECRET_KEY"] = "s" * 32
    config = config_of(cli)
    from newsletter.content.articles import resolve_article
    from newsletter.content.issue import issue_for
    from newsletter.render.issue import render_issue

    factory = MessageFactory(render_issue(issue_for(resolve_article("latest", config.path("issues"))), config), config)
    signer = DkimSigner("privacy-notes.news", "nl2026", load_key(key, "rsa-sha256", "test"), "rsa-sha256", key)

    def build(job: Job) -> bytes:
        return factory.build(Subscriber.of(job.recipient, "Reader"), sign=False)

    async def go() -> list[list[bytes]]:
        pool = SigningPool(signer, False, build, workers=1)
        try:
            first = await pool.build_batch([Job(i, f"r{i}@example.org") for i in range(3)])
            assert pool.executor is not None
            for process in list(pool.executor._processes.values()):  # the worker dies
                process.kill()
                process.join()
            second = await pool.build_batch([Job(i, f"s{i}@example.org") for i in range(3)])
            assert pool.executor is None  # from now on this process signs
            return [first, second]  # type: ignore[list-item]
        finally:
            pool.close()

    for batch in asyncio.run(go()):
        assert len(batch) == 3
        for message in batch:
            assert isinstance(message, bytes) and dkim.verify(message, dnsfunc=_dns(record))
