"""`subscribers ...` and `serve`: the list and the public unsubscribe endpoint."""

from __future__ import annotations

import csv
import os
import sys
from collections import Counter
from pathlib import Path
from typing import TextIO

import click

from ..config import Config
from ..content.addresses import normalize_address
from ..content.subscribers import STATUSES, ListReport, Subscriber, iter_rows
from ..errors import NewsletterError
from ..render.unsubscribe import base_url_warnings
from ..state.statuses import SuppressionReason
from ..state.suppressions import counts_by_reason, reason_for, suppress, suppression_reasons, unsuppress
from . import State, app, engine, pass_state, warn

REASONS = tuple(reason.value for reason in SuppressionReason)


def _effective(subscriber: Subscriber, reasons: dict[str, str]) -> str:
    """The suppression list wins over the CSV's status."""
    return reasons.get(subscriber.email.lower()) or subscriber.status


def _report_problems(report: ListReport) -> None:
    for problem in report.problems:
        click.echo(report.format(problem))
    if report.not_shown > 0:
        click.echo(f"{report.path}: ... and {report.not_shown:,} more problems not shown")


@app.group()
def subscribers() -> None:
    """Check, list and export the subscriber list; unsubscribe or resubscribe an address."""


@subscribers.command()
@pass_state
def check(state: State) -> None:
    """Validate every row; print each problem as FILE:LINE and exit 1 when there are errors."""
    config = state.config
    report = ListReport(config.path("subscribers"))
    for _ in iter_rows(report.path, report=report):
        pass
    _report_problems(report)
    reasons = counts_by_reason(engine(config))
    suppressed = sum(reasons.values())
    click.echo(
        report.summary() + (f"; {suppressed:,} addresses suppressed in the state database" if suppressed else "")
    )
    if not report.ok:
        raise click.exceptions.Exit(1)


@subscribers.command("list")
@click.option(
    "--status",
    "wanted",
    type=click.Choice(STATUSES),
    default=None,
    help="Only rows with this effective status (suppressions applied).",
)
@pass_state
def list_cmd(state: State, wanted: str | None) -> None:
    """Print email, name and effective status of every valid row (tab-separated)."""
    config = state.config
    reasons = suppression_reasons(engine(config))
    report = ListReport(config.path("subscribers"))
    for subscriber in iter_rows(report.path, report=report):
        status = _effective(subscriber, reasons)
        if wanted is None or status == wanted:
            click.echo(f"{subscriber.email}\t{subscriber.name}\t{status}")
    if report.invalid:
        warn(report.skipped_message())


@subscribers.command()
@pass_state
def stats(state: State) -> None:
    """Counts by effective status, invalid rows, and suppressions by reason."""
    config = state.config
    db = engine(config)
    reasons = suppression_reasons(db)
    report = ListReport(config.path("subscribers"))
    counts: Counter[str] = Counter(_effective(s, reasons) for s in iter_rows(report.path, report=report))
    click.echo(f"{report.path}: {report.rows:,} rows")
    for status in STATUSES:
        click.echo(f"  {status:<13} {counts[status]:>9,}")
    click.echo(f"  {'invalid':<13} {report.invalid:>9,}")
    by_reason = counts_by_reason(db)
    click.echo(f"suppression list ({config.state_shown}): {sum(by_reason.values()):,} addresses")
    for reason in REASONS:
        click.echo(f"  {reason:<13} {by_reason.get(reason, 0):>9,}")
    if report.invalid:
        warn(report.skipped_message())


def _find(path: Path, email: str) -> Subscriber | None:
    """The list's row for an address (streamed; invalid rows are ignored)."""
    try:
        return next((s for s in iter_rows(path) if s.email.lower() == email.lower()), None)
    except NewsletterError:
        return None


@subscribers.command()
@click.argument("email")
@click.option(
    "--reason", type=click.Choice(REASONS), default="unsubscribed", show_default=True, help="Why mail must stop."
)
@pass_state
def unsubscribe(state: State, email: str, reason: str) -> None:
    """Add EMAIL to the suppression list: no send will reach it, whatever the CSV says."""
    config = state.config
    address = normalize_address(email, "EMAIL")
    db = engine(config)
    existing = reason_for(db, address)
    if existing:
        click.echo(f"{address} is already suppressed ({existing}); nothing changed")
        return
    suppress(db, address, SuppressionReason(reason), "by the command line")
    row = _find(config.path("subscribers"), address)
    where = f"line {row.line} of {config.path('subscribers')}" if row else "not on the list; kept for the future"
    click.echo(f"{address}: suppressed ({reason}); {where}")


@subscribers.command()
@click.argument("email")
@pass_state
def resubscribe(state: State, email: str) -> None:
    """Remove EMAIL from the suppression list (the CSV's own status still applies)."""
    config = state.config
    address = normalize_address(email, "EMAIL")
    if not unsuppress(engine(config), address):
        click.echo(f"{address} was not suppressed; nothing changed")
    else:
        click.echo(f"{address}: removed from the suppression list")
    row = _find(config.path("subscribers"), address)
    if row is None:
        warn(f"{address} is not on {config.path('subscribers')}; add a row for it to receive issues")
    elif row.status != "active":
        warn(f"{config.path('subscribers')}:{row.line}: the status is still {row.status!r}; set it to active")


@subscribers.command()
@click.argument("email")
@pass_state
def show(state: State, email: str) -> None:
    """What is known about EMAIL: its list row, its suppression, what it was sent, every bounce and complaint."""
    from ..state.bounces import events_for, mailed
    from ..state.suppressions import suppression_of

    config = state.config
    address = normalize_address(email, "EMAIL")
    db = engine(config)
    row = _find(config.path("subscribers"), address)
    suppression = suppression_of(db, address)
    sent = mailed(db, address, limit=1000)
    events = events_for(db, address)
    click.echo(address)
    if row is not None:
        name = f" ({row.name})" if row.name else ""
        click.echo(f"  list:      {config.path('subscribers')} line {row.line}{name}, {row.status}")
    else:
        click.echo(f"  list:      not on {config.path('subscribers')}")
    if suppression is not None:
        reason, detail, since = suppression
        click.echo(f"  status:    {reason}: suppressed {since:%Y-%m-%d %H:%M} UTC" + (f" ({detail})" if detail else ""))
    else:
        click.echo(f"  status:    {row.status if row is not None else 'not subscribed'}")
    if sent:
        count = len({m.campaign_id for m in sent})
        click.echo(f"  sent:      {count:,} campaign{'s' if count != 1 else ''}, the latest {sent[0].campaign_key}")
    else:
        click.echo("  sent:      nothing yet")
    if not events:
        click.echo("  bounces and complaints: none")
        return
    click.echo(f"  bounces and complaints: {len(events)}")
    for event in events:
        kind = "complaint" if event.kind == "complaint" else f"{event.kind} bounce"
        when = f"{event.occurred_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"    {when}  {kind} {event.status}  {event.about}  ({event.source}): {event.action}")
        if event.diagnostic:
            click.echo(f"      {event.diagnostic}")


def _export(config: Config, out: TextIO) -> ListReport:
    reasons = suppression_reasons(engine(config))
    report = ListReport(config.path("subscribers"))
    writer: csv.DictWriter[str] | None = None
    for subscriber in iter_rows(report.path, report=report):
        if writer is None:
            columns = list(subscriber.fields)
            if "status" not in columns:
                columns.insert(min(2, len(columns)), "status")
            writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
        writer.writerow({**subscriber.fields, "status": _effective(subscriber, reasons)})
    if writer is None:
        out.write("email,name,status\n")
    return report


@subscribers.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file (replaced atomically) instead of standard output.",
)
@pass_state
def export(state: State, out: Path | None) -> None:
    """Write the list as CSV with the effective status, so a re-import can never bring back someone who left."""
    config = state.config
    if out is None:
        report = _export(config, sys.stdout)
    else:
        # Written beside the target and renamed: exporting over the list itself is safe.
        tmp = out.with_name(f".{out.name}.tmp")
        try:
            with tmp.open("w", encoding="utf-8", newline="") as fh:
                report = _export(config, fh)
            os.replace(tmp, out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise NewsletterError(f"{out}: cannot write the export ({exc.strerror}); choose another --out") from None
        click.echo(f"wrote {report.valid:,} rows to {out}", err=True)
    if report.invalid:
        warn(f"{report.invalid:,} invalid rows not exported: lines {report.lines_text()}; see subscribers check")


@app.command()
@click.option("--host", default=None, help="Interface to listen on (default: [serve] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="TCP port (default: [serve] port, 8000).")
@pass_state
def serve(state: State, host: str | None, port: int | None) -> None:
    """Run the public endpoints: one-click unsubscribe, the web archive, /healthz.

    Put it behind a reverse proxy that terminates HTTPS at [newsletter] base_url.
    """
    from ..web.public import serve as run_server

    config = state.config
    for warning in base_url_warnings(config):
        warn(warning)
    if not config.secret_key:
        warn("NEWSLETTER_SECRET_KEY is not set: every unsubscribe link will be refused; set the same value as for send")
    if not config.newsletter.base_url:
        warn("[newsletter] base_url is empty: emails carry no link to this server; set it to its public https:// URL")
    run_server(config, host or config.serve.host, port or config.serve.port)
