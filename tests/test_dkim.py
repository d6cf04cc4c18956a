"""DKIM: every message signed when [dkim] is set, verified by dkimpy (the reference), for RSA and Ed25519."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from .helpers import Cli, write_list
from .smtpd import SmtpServer


def _key(folder: Path, algorithm: str, mode: int = 0o600) -> tuple[Path, bytes]:
    """A private key file and the DNS TXT record that publishes its public key."""
    if algorithm == "ed25519-sha256":
        key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey = ed25519.Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        record = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(public)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    path = folder / "dkim.key"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem)
    os.chmod(path, mode)
    return path, record


def _dns(record: bytes):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"nl2026._domainkey.example.com.", name
        return record

    return lookup


def _configure(cli: Cli, algorithm: str, key: Path) -> None:
    cli.env.update(
        {
            "NEWSLETTER_DKIM_DOMAIN": "example.com",
            "NEWSLETTER_DKIM_SELECTOR": "nl2026",
            "NEWSLETTER_DKIM_KEY_FILE": str(key),
            "NEWSLETTER_DKIM_ALGORITHM": algorithm,
            "NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org",
            "NEWSLETTER_SECRET_KEY": "s" * 32,
        }
    )


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_every_message_of_a_send_verifies(cli: Cli, folder: Path, smtp_server: SmtpServer, algorithm: str) -> None:
    key, record = _key(folder, algorithm)
    _configure(cli, algorithm, key)
    write_list(folder, 5, cli)
    cli.env.update(smtp_server.env())
    (folder / "issues" / "2026-11-25-dots.md").write_text(
        "---\ntitle: Über Zertifikate, Ketten und Widerruf\ndate: 2026-11-25\n---\n\n.a dot line\n\n    code   with   spaces\n",
        encoding="utf-8",
    )
    result = cli("send", "2026-11-25-dots", "--yes")
    assert result.exit_code == 0, result.output
    received = smtp_server.handler.received
    assert len(received) == 5
    for message in received:
        assert message.data.startswith(b"DKIM-Signature: v=1; a=" + algorithm.encode())
        assert dkim.verify(message.data, dnsfunc=_dns(record)), message.data[:600]
        signed = dkim.DKIM(message.data)
        assert signed.verify(dnsfunc=_dns(record))
        header = message.message["DKIM-Signature"]
        signed_names = [h.strip().lower() for h in header.split("h=", 1)[1].split(";", 1)[0].split(":")]
        for name in ("from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe"):
            assert name in signed_names
        assert signed_names.count("list-unsubscribe-post") == 2  # present once, and named once more


def test_a_changed_one_click_header_fails_verification(cli: Cli, folder: Path) -> None:
    key, record = _key(folder, "rsa-sha256")
    _configure(cli, "rsa-sha256", key)
    assert cli("send-test", "latest", "--to", "editor@example.net").exit_code == 0
    (eml,) = (folder / "outbox").glob("test-*/*.eml")
    data = eml.read_bytes()
    assert dkim.verify(data, dnsfunc=_dns(record))
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in data
    tampered = data.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Two-Clicks")
    assert not dkim.verify(tampered, dnsfunc=_dns(record))
    added = data.replace(b"\r\n\r\n", b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n", 1)
    assert not dkim.verify(added, dnsfunc=_dns(record))  # a second one, added after signing
    body = data.replace(b"Unsubscribe", b"Unsubscrbe", 3)
    assert not dkim.verify(body, dnsfunc=_dns(record))


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("mode", "can be read by others (mode 644); make it private: chmod 600"),
        ("missing", "cannot read it (No such file or directory)"),
        ("garbage", "is not an unencrypted PEM private key"),
        ("wrong-kind", "is not an Ed25519 key, as algorithm ed25519-sha256 needs"),
        ("incomplete", "[dkim]: selector missing; DKIM signing needs domain, selector and key_file"),
    ],
)
def test_key_problems_are_one_line(cli: Cli, folder: Path, problem: str, expected: str) -> None:
    key, _record = _key(folder, "rsa-sha256", 0o644 if problem == "mode" else 0o600)
    _configure(cli, "ed25519-sha256" if problem == "wrong-kind" else "rsa-sha256", key)
    if problem == "missing":
        key.unlink()
    elif problem == "garbage":
        key.write_text("not a key")
    elif problem == "incomplete":
        del cli.env["NEWSLETTER_DKIM_SELECTOR"]
    result = cli("render", "latest")
    assert result.exit_code == 2
    assert result.stderr.startswith("newsletter: error: ") and expected in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1
