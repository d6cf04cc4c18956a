"""`doctor`: is this folder ready for a real send? One line per finding, with the fix."""

from __future__ import annotations

import ipaddress
import sys

import click

from ..send.preflight import Finding, Level, check_setup
from . import State, app, pass_state

_COLOURS = {Level.ERROR: "red", Level.WARNING: "yellow", Level.OK: "green", Level.NOTE: None}


def _address(value: str | None, option: str) -> str | None:
    host = value.rpartition(":")[0] if value and value.count(":") == 1 else value
    if value:
        try:
            ipaddress.ip_address(host or "")
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not an IP address (e.g. 1.1.1.1 or 127.0.0.1:5353)", param_hint=option
            ) from None
    return value


def _print(findings: list[Finding]) -> None:
    for finding in findings:
        click.secho(f"{finding.level}: {finding.message}", fg=_COLOURS[finding.level])


@app.command()
@click.option(
    "--dns", "with_dns", is_flag=True, help="Also look up SPF, DKIM, DMARC and reverse DNS (network lookups)."
)
@click.option("--nameserver", metavar="IP[:PORT]", help="With --dns: ask this DNS server, not the system's resolver.")
@click.option("--sending-ip", metavar="IP", help="With --dns: the public address mail leaves from (for reverse DNS).")
@pass_state
def doctor(state: State, with_dns: bool, nameserver: str | None, sending_ip: str | None) -> None:
    """Check the set-up before a real send: From, postal address, unsubscribe, DKIM (and DNS with --dns).

    Exit status 0: all good; 1: warnings; 2: errors (`send` refuses a list send over SMTP then).
    """
    _address(nameserver, "--nameserver")
    if sending_ip and ":" not in sending_ip:
        _address(sending_ip, "--sending-ip")
    if (nameserver or sending_ip) and not with_dns:
        raise click.UsageError("--nameserver and --sending-ip go with --dns")
    config = state.config
    findings = check_setup(config)
    _print(findings)
    if with_dns:
        from ..send.preflight_dns import Lookup, check_dns

        dns_findings = check_dns(config, Lookup(nameserver), sending_ip)
        _print(dns_findings)
        findings += dns_findings
    errors = sum(f.level == Level.ERROR for f in findings)
    warnings = sum(f.level == Level.WARNING for f in findings)
    if errors:
        click.echo(
            f"{errors} error(s), {warnings} warning(s): `newsletter send` refuses to send to the list over SMTP "
            f"until the errors are fixed"
        )
        sys.exit(2)
    if warnings:
        click.echo(f"{warnings} warning(s): mail goes out, but fewer of your readers may see it in their inbox")
        sys.exit(1)
    click.echo("no problems found" + ("" if with_dns else "; `newsletter doctor --dns` also checks your DNS records"))
