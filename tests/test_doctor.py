"""`newsletter doctor`: the set-up checked before a real send, and `send` refusing a list send it calls wrong.

The DNS checks ask a real DNS server started on 127.0.0.1 (tests/dnsserver.py); nothing reaches
the network, and without --dns nothing is looked up at all.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .dnsserver import DnsServer, txt
from .helpers import Cli, write_list
from .smtpd import PRODUCTION, SmtpServer

DOMAIN = "privacy-notes.news"
RELAY = "relay.privacy-notes.news"
RELAY_IP = "203.0.113.25"


def _dkim_key(folder: Path, bits: int = 2048, mode: int = 0o600) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    path = folder / "dkim.key"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(path, mode)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _configured(cli: Cli, folder: Path) -> str:
    """A folder set up for production: own domain and address, https unsubscribe, DKIM, an SMTP relay."""
    key, record = _dkim_key(folder)
    cli.env.update(
        {
            **PRODUCTION,
            "NEWSLETTER_DELIVERY_BACKEND": "smtp",
            "NEWSLETTER_SMTP_HOST": RELAY,
            "NEWSLETTER_DKIM_DOMAIN": DOMAIN,
            "NEWSLETTER_DKIM_SELECTOR": "nl2026",
            "NEWSLETTER_DKIM_KEY_FILE": str(key),
        }
    )
    return record


def _zone(dkim_record: str) -> dict[tuple[str, str], list[str]]:
    return {
        (DOMAIN, "TXT"): [txt("v=spf1 ip4:203.0.113.0/24 -all"), txt("google-site-verification=abc")],
        (DOMAIN, "MX"): [f"10 mx.{DOMAIN}."],
        (f"nl2026._domainkey.{DOMAIN}", "TXT"): [txt(dkim_record)],
        (f"_dmarc.{DOMAIN}", "TXT"): [txt(f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{DOMAIN}")],
        (RELAY, "A"): [RELAY_IP],
        ("25.113.0.203.in-addr.arpa", "PTR"): [f"{RELAY}."],
    }


def test_a_fresh_folder_lists_what_to_fix(cli: Cli) -> None:
    result = cli("doctor")
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 2
    assert "[newsletter] from: newsletter@example.com is on example.com, a domain reserved for examples" in errors[0]
    assert "[newsletter] postal_address: still the example address" in errors[1]
    (base_url,) = [line for line in lines if "base_url" in line]
    assert base_url.startswith("warning: ") and "no one-click unsubscribe (RFC 8058)" in base_url
    assert lines[-1].startswith("2 error(s), 1 warning(s)")


def test_a_configured_folder_is_clean(cli: Cli, folder: Path) -> None:
    _configured(cli, folder)
    result = cli("doctor")
    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if line.startswith(("error", "warning"))]
    assert f"ok: [dkim]: signing with d={DOMAIN}, s=nl2026 (rsa-sha256)" in result.output
    assert result.output.splitlines()[-1].startswith("no problems found")


@pytest.mark.parametrize(
    ("env", "level", "expected"),
    [
        ({"NEWSLETTER_NEWSLETTER_FROM": "News <news@gmail.com>"}, "error", "a mailbox provider's domain"),
        ({"NEWSLETTER_NEWSLETTER_FROM": "News <news@letters.example.net>"}, "error", "a domain reserved for examples"),
        ({"NEWSLETTER_NEWSLETTER_POSTAL_ADDRESS": " "}, "error", "postal_address: empty"),
        ({"NEWSLETTER_SECRET_KEY": ""}, "error", "NEWSLETTER_SECRET_KEY is not set but [newsletter] base_url is"),
        ({"NEWSLETTER_NEWSLETTER_BASE_URL": "http://news.example.org"}, "warning", "is not https://"),
        ({"NEWSLETTER_SECRET_KEY": "short"}, "warning", "shorter than 16 characters"),
        ({"NEWSLETTER_DKIM_DOMAIN": "other-domain.org"}, "warning", "does not count for DMARC"),
        ({"NEWSLETTER_SMTP_SECURITY": "none"}, "warning", "cross the network unencrypted"),
    ],
)
def test_each_problem_is_one_line_with_its_fix(
    cli: Cli, folder: Path, env: dict[str, str], level: str, expected: str
) -> None:
    _configured(cli, folder)
    cli.env.update(env)
    result = cli("doctor")
    assert result.exit_code == (2 if level == "error" else 1), result.output
    problems = [line for line in result.output.splitlines() if line.startswith(("error", "warning"))]
    assert [line for line in problems if line.startswith(f"{level}: ") and expected in line], problems


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("mode", "can be read by others (mode 644); make it private: chmod 600"),
        ("garbage", "is not an unencrypted PEM private key"),
        ("short", "an RSA key of 1024 bits is weak; make a 2048-bit key"),
    ],
)
def test_dkim_key_problems(cli: Cli, folder: Path, problem: str, expected: str) -> None:
    _configured(cli, folder)
    key = Path(cli.env["NEWSLETTER_DKIM_KEY_FILE"])
    if problem == "mode":
        key.chmod(0o644)
    elif problem == "garbage":
        key.write_text("not a key")
    else:
        _dkim_key(folder, bits=1024)
    result = cli("doctor")
    assert result.exit_code == (1 if problem == "short" else 2), result.output
    assert expected in result.output


def test_dns_records_all_published(cli: Cli, folder: Path) -> None:
    record = _configured(cli, folder)
    with DnsServer(_zone(record)) as server:
        result = cli("doctor", "--dns", "--nameserver", server.address)
    assert result.exit_code == 0, result.output
    assert f"ok: SPF: {DOMAIN}: v=spf1 ip4:203.0.113.0/24 -all" in result.output
    assert f"ok: DKIM: nl2026._domainkey.{DOMAIN} publishes the signing key" in result.output
    assert f"ok: DMARC: _dmarc.{DOMAIN}: p=quarantine" in result.output
    assert f"ok: reverse DNS: {RELAY_IP} is {RELAY}, and back" in result.output


def test_dns_problems_each_with_the_record_to_publish(cli: Cli, folder: Path) -> None:
    record = _configured(cli, folder)
    _other_key, other_record = _dkim_key(folder.parent)
    zone = _zone(other_record)  # the DNS publishes another key than the one we sign with
    del zone[(DOMAIN, "TXT")]  # no SPF
    zone[(f"_dmarc.{DOMAIN}", "TXT")] = [txt("v=DMARC1; p=reject")]
    del zone[("25.113.0.203.in-addr.arpa", "PTR")]  # the relay has no reverse DNS
    with DnsServer(zone) as server:
        result = cli("doctor", "--dns", "--nameserver", server.address)
    assert result.exit_code == 2, result.output
    lines = {line.split(":", 2)[1].strip(): line for line in result.output.splitlines() if ": " in line}
    assert lines["SPF"].startswith("warning: SPF: privacy-notes.news has no SPF record")
    assert lines["DKIM"].startswith(f"error: DKIM: nl2026._domainkey.{DOMAIN} publishes another key")
    assert f'publish "{record}"' in lines["DKIM"]  # the exact record, ready to paste
    assert lines["DMARC"].startswith("ok: DMARC") and "p=reject" in lines["DMARC"]  # our DKIM signature aligns
    assert lines["reverse DNS"].startswith(f"warning: reverse DNS: {RELAY_IP} ({RELAY}) has no PTR record")

    # A DKIM record missing altogether, and DMARC's reject without anything aligned: both errors.
    cli.env.update({"NEWSLETTER_DKIM_DOMAIN": "", "NEWSLETTER_DKIM_SELECTOR": "", "NEWSLETTER_DKIM_KEY_FILE": ""})
    cli.env["NEWSLETTER_BOUNCES_ADDRESS"] = "bounces@mailer-service.net"
    with DnsServer(zone) as server:
        result = cli("doctor", "--dns", "--nameserver", server.address)
    assert result.exit_code == 2, result.output
    assert (
        "error: DMARC: _dmarc.privacy-notes.news says p=reject, and neither a DKIM signature of ours" in result.output
    )
    assert "warning: SPF: mailer-service.net has no SPF record" in result.output


def test_without_dns_nothing_is_looked_up(cli: Cli, folder: Path) -> None:
    record = _configured(cli, folder)
    with DnsServer(_zone(record)) as server:
        assert cli("doctor").exit_code == 0
        refused = cli("doctor", "--nameserver", server.address)
        assert refused.exit_code == 2 and "--nameserver and --sending-ip go with --dns" in refused.output
        assert server.asked == []
        cli.env["NEWSLETTER_SMTP_HOST"] = "localhost"  # the relay is this machine: its address is given
        result = cli("doctor", "--dns", "--nameserver", server.address, "--sending-ip", RELAY_IP)
    assert result.exit_code == 0, result.output
    assert ("25.113.0.203.in-addr.arpa", "PTR") in server.asked


def test_send_refuses_a_list_send_over_smtp_with_an_error(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    write_list(folder, 3, cli)
    cli.env.update(smtp_server.env())
    for key in ("NEWSLETTER_NEWSLETTER_FROM", "NEWSLETTER_NEWSLETTER_POSTAL_ADDRESS"):
        del cli.env[key]  # back to init's example From and postal address
    result = cli("send", "latest", "--yes")
    assert result.exit_code == 2
    assert result.stderr.startswith("newsletter: error: newsletter.toml: [newsletter] from: newsletter@example.com")
    assert "`newsletter doctor` shows 1 more problem(s) and the fixes" in result.stderr
    assert result.stderr.count("\n") == 1
    assert smtp_server.handler.received == []
    # A dry run and a test send are not list sends; neither is the outbox (the Quickstart).
    assert cli("send", "latest", "--dry-run").exit_code == 0
    assert cli("send-test", "latest", "--to", "editor@example.net").exit_code == 0
    assert len(smtp_server.handler.received) == 1
    cli.env["NEWSLETTER_DELIVERY_BACKEND"] = "outbox"
    sent = cli("send", "latest", "--yes")
    assert sent.exit_code == 0, sent.output
    assert len(list((folder / "outbox").rglob("*.eml"))) == 3
