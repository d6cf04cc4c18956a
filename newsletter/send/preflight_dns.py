"""`newsletter doctor --dns`: the DNS records receivers check, looked up with dnspython.

SPF (who may send for the envelope domain), the DKIM key record (does it publish the key we sign
with?), DMARC (the From domain's policy, and whether SPF or DKIM align with it) and the sending
host's reverse DNS (a PTR record whose name resolves back to the address: SpamAssassin adds 2.4
points without one). Only `doctor --dns` calls this; a send never looks anything up.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import dns.exception
import dns.resolver
import dns.reversename

from ..config import Config
from ..errors import ConfigError
from ..render.dkim import signer_for
from .preflight import Finding, Level, aligned, envelope_domain, is_local_host, organizational_domain


class Lookup:
    """A resolver that turns DNS answers into lists of strings and failures into one-line reasons."""

    def __init__(self, nameserver: str | None = None, timeout: float = 5.0) -> None:
        if nameserver:
            host, _, port = nameserver.rpartition(":") if nameserver.count(":") == 1 else (nameserver, "", "")
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [host or nameserver]
            if port:
                self.resolver.port = int(port)
        else:
            self.resolver = dns.resolver.Resolver()
        self.resolver.lifetime = timeout

    def query(self, name: str, rdtype: str) -> list[Any]:
        """The answer's records; [] when the name or the type does not exist. Other failures raise LookupFailed."""
        try:
            return list(self.resolver.resolve(name, rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise LookupFailed(f"{rdtype} {name}: no answer in time") from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{rdtype} {name}: {exc}") from None

    def txt(self, name: str) -> list[str]:
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self.query(name, "TXT")]

    def addresses(self, name: str) -> list[str]:
        return [r.address for kind in ("A", "AAAA") for r in self.query(name, kind)]


class LookupFailed(Exception):
    pass


def _tags(record: str) -> dict[str, str]:
    """`v=DKIM1; k=rsa; p=...` -> {"v": "DKIM1", ...} (tag names lower-cased, spaces removed from values)."""
    tags = {}
    for part in record.split(";"):
        name, eq, value = part.partition("=")
        if eq:
            tags[name.strip().lower()] = "".join(value.split())
    return tags


def spf(config: Config, lookup: Lookup) -> list[Finding]:
    domain = envelope_domain(config)
    records = [r for r in lookup.txt(domain) if r.lower().startswith("v=spf1")]
    if not records:
        return [
            Finding(
                Level.WARNING,
                f"SPF: {domain} has no SPF record: Gmail and Yahoo want SPF or DKIM of every sender and both of "
                f'bulk senders; publish TXT {domain} "v=spf1 include:<your relay\'s domain> -all" (your relay '
                f"names what to include)",
            )
        ]
    if len(records) > 1:
        return [
            Finding(Level.ERROR, f"SPF: {domain} has {len(records)} SPF records, so SPF fails; merge them into one")
        ]
    record = records[0]
    terms = record.lower().split()
    if "+all" in terms or "all" in terms:
        return [
            Finding(Level.ERROR, f"SPF: {domain}: {record!r} lets anyone send as {domain}; end it with -all or ~all")
        ]
    findings = [Finding(Level.OK, f"SPF: {domain}: {record}")]
    if "?all" in terms:
        findings = [Finding(Level.WARNING, f"SPF: {domain}: {record!r} ends with ?all, which says nothing; use -all")]
    if not aligned(domain, config.newsletter.domain):
        findings.append(
            Finding(
                Level.NOTE,
                f"SPF: the envelope domain {domain} is not under the From's ({config.newsletter.domain}), so SPF "
                f"cannot align for DMARC; DKIM must",
            )
        )
    return findings


def _public_key_record(key: Any, algorithm: str) -> str:
    from cryptography.hazmat.primitives import serialization

    if algorithm == "ed25519-sha256":
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def _same_key(published: str, expected: str, algorithm: str) -> bool:
    if published == expected:
        return True
    if algorithm == "ed25519-sha256":
        return False
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:  # the same RSA key, written as a bare PKCS#1 key or with different padding
        return bool(
            load_der_public_key(base64.b64decode(published)).public_numbers()  # type: ignore[union-attr]
            == load_der_public_key(base64.b64decode(expected)).public_numbers()  # type: ignore[union-attr]
        )
    except (ValueError, TypeError, AttributeError):
        return False


def dkim(config: Config, lookup: Lookup) -> list[Finding]:
    section = config.dkim
    if not section.domain:
        return []
    try:
        signer = signer_for(config)
    except ConfigError:
        return []  # already an error of the checks without DNS
    assert signer is not None
    name = f"{section.selector}._domainkey.{section.domain}"
    record = _public_key_record(signer.key, section.algorithm)
    published = [r for r in lookup.txt(name) if "p=" in r]
    if not published:
        return [Finding(Level.ERROR, f'DKIM: no key record at {name}; publish TXT {name} "{record}"')]
    tags = _tags(published[0])
    if not tags.get("p"):
        return [Finding(Level.ERROR, f'DKIM: the key at {name} is revoked (empty p=); publish "{record}"')]
    if not _same_key(tags["p"], _tags(record)["p"], section.algorithm):
        return [
            Finding(
                Level.ERROR,
                f"DKIM: {name} publishes another key than [dkim] key_file, so every signature fails; publish "
                f'"{record}" (or point key_file at the key it publishes)',
            )
        ]
    if "y" in tags.get("t", "").split(":"):
        return [Finding(Level.NOTE, f"DKIM: {name} matches the key, in test mode (t=y): remove t=y when it works")]
    return [Finding(Level.OK, f"DKIM: {name} publishes the signing key")]


def dmarc(config: Config, lookup: Lookup) -> list[Finding]:
    domain = config.newsletter.domain.lower()
    org = organizational_domain(domain)
    names = [f"_dmarc.{domain}"] + ([f"_dmarc.{org}"] if org != domain else [])
    for name in names:
        records = [r for r in lookup.txt(name) if r.replace(" ", "").upper().startswith("V=DMARC1")]
        if records:
            break
    else:
        return [
            Finding(
                Level.WARNING,
                f"DMARC: {domain} has no DMARC record: Gmail and Yahoo require one of bulk senders; publish TXT "
                f'_dmarc.{org} "v=DMARC1; p=none; rua=mailto:dmarc-reports@{org}" and tighten p= later',
            )
        ]
    if len(records) > 1:
        return [
            Finding(Level.ERROR, f"DMARC: {name} has {len(records)} DMARC records, so receivers ignore them; keep one")
        ]
    policy = _tags(records[0]).get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        return [Finding(Level.WARNING, f"DMARC: {name}: {records[0]!r} has no valid p= (none, quarantine or reject)")]
    dkim_aligned = bool(config.dkim.domain) and aligned(config.dkim.domain, domain)
    spf_aligned = aligned(envelope_domain(config), domain)
    if policy != "none" and not (dkim_aligned or spf_aligned):
        return [
            Finding(
                Level.ERROR,
                f"DMARC: {name} says p={policy}, and neither a DKIM signature of ours nor the envelope domain is "
                f"under {org}: receivers will {'refuse' if policy == 'reject' else 'bin'} the mail unless the relay "
                f"signs with d={domain}",
            )
        ]
    return [Finding(Level.OK, f"DMARC: {name}: p={policy}")]


def _sending_addresses(config: Config, sending_ip: str | None, lookup: Lookup) -> tuple[str, list[str]] | None:
    """(what sends, its addresses): --sending-ip, else the relay named by [smtp] host; None when unknown."""
    if sending_ip:
        return sending_ip, [sending_ip]
    host = config.smtp.host
    if config.delivery.backend != "smtp" or is_local_host(host):
        return None
    try:
        ipaddress.ip_address(host)
        return host, [host]
    except ValueError:
        return host, lookup.addresses(host)


def reverse_dns(config: Config, lookup: Lookup, sending_ip: str | None = None) -> list[Finding]:
    found = _sending_addresses(config, sending_ip, lookup)
    if found is None:
        return [
            Finding(
                Level.NOTE,
                "reverse DNS: the relay is this machine (or there is none), whose public address doctor cannot "
                "know; run `newsletter doctor --dns --sending-ip ADDRESS` with the address it sends from",
            )
        ]
    host, addresses = found
    if not addresses:
        return [Finding(Level.WARNING, f"reverse DNS: {host} has no address; check [smtp] host")]
    findings = []
    for address in addresses:
        names = [str(r.target).rstrip(".") for r in lookup.query(str(dns.reversename.from_address(address)), "PTR")]
        if not names:
            findings.append(
                Finding(
                    Level.WARNING,
                    f"reverse DNS: {address} ({host}) has no PTR record: receivers score its mail as spam "
                    f"(SpamAssassin's RDNS_NONE: 2.4 points); ask whoever runs it to set one naming a host that "
                    f"resolves back to {address}",
                )
            )
        elif not any(address in lookup.addresses(name) for name in names):
            findings.append(
                Finding(
                    Level.WARNING,
                    f"reverse DNS: {address} ({host}) is named {names[0]}, which does not resolve back to {address}; "
                    f"add the address to {names[0]} or change the PTR record",
                )
            )
        else:
            findings.append(Finding(Level.OK, f"reverse DNS: {address} is {names[0]}, and back"))
    return findings


def check_dns(config: Config, lookup: Lookup, sending_ip: str | None = None) -> list[Finding]:
    """The DNS checks in `doctor`'s order; a lookup that fails is a warning, never a crash."""
    findings: list[Finding] = []
    for check in (spf, dkim, dmarc):
        try:
            findings += check(config, lookup)
        except LookupFailed as exc:
            findings.append(Finding(Level.WARNING, f"{check.__name__.upper()}: could not look up {exc}; try again"))
    try:
        findings += reverse_dns(config, lookup, sending_ip)
    except LookupFailed as exc:
        findings.append(Finding(Level.WARNING, f"reverse DNS: could not look up {exc}; try again"))
    return findings
