"""`subscribers ...` that read the list, and the suppression commands.

The list lives in the state database (signups, imports, the operator's additions, and the CSV
synced in); `list`, `stats` and `export` read it there, with the effective status (a suppression
wins). The commands that change the list are in subscribers_edit.py.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

import click
from sqlalchemy import Engine

from ..config import Config
from ..content.addresses import normalize_address
from ..content.listsync import sync_csv
from ..content.names import normalize_tag
from ..content.subscribers import ListReport, iter_rows
from ..errors import NewsletterError
from ..state.erasure import erasure_count, is_erased, lift_erasure
from ..state.files import mode_to_keep
from ..state.statuses import SubscriberSource, SubscriberStatus, SuppressionReason
from ..state.subscribers import count_by, field_names, find, iter_subscribers, tag_counts
from ..state.suppressions import counts_by_reason, reason_for, suppress, unsuppress
from . import State, app, engine, pass_state, warn

REASONS = tuple(reason.value for reason in SuppressionReason)
STATUSES = tuple(status.value for status in SubscriberStatus)
SOURCES = tuple(source.value for source in SubscriberSource)
EXPORT_COLUMNS = ["email", "name", "first_name", "status", "source", "tags", "subscribed_at", "confirmed_at", "consent"]


def report_problems(report: ListReport) -> None:
    for problem in report.problems:
        click.echo(report.format(problem))
    if report.not_shown > 0:
        click.echo(f"{report.path}: ... and {report.not_shown:,} more problems not shown")


def list_engine(config: Config) -> Engine:
    """The state database with the CSV synced in first, so the commands see what a send would."""
    from ..state.unsubscribes import fold

    db = engine(config)
    fold(config, db)  # unsubscribes `serve` kept in its journal
    synced = sync_csv(config, db)
    if synced.report.invalid:
        warn(synced.report.skipped_message())
    if synced.held:
        warn(synced.held_message())
    return db


def tag_option(value: str) -> str:
    try:
        tag = normalize_tag(value)
    except ValueError as exc:
        raise NewsletterError(f"TAG: {exc}") from None
    if not tag:
        raise NewsletterError("TAG: empty; give a tag like paid or beta")
    return tag


@app.group()
def subscribers() -> None:
    """The list: add, import, tag, list, export; unsubscribe, resubscribe or erase an address."""


@subscribers.command()
@pass_state
def check(state: State) -> None:
    """Validate every row of [paths] subscribers; print each problem as FILE:LINE and exit 1 on errors."""
    config = state.config
    report = ListReport(config.path("subscribers"))
    for _ in iter_rows(report.path, report=report):
        pass
    report_problems(report)
    reasons = counts_by_reason(engine(config))
    suppressed = sum(reasons.values())
    click.echo(
        report.summary() + (f"; {suppressed:,} addresses suppressed in the state database" if suppressed else "")
    )
    if not report.ok:
        raise click.exceptions.Exit(1)


@subscribers.command("list")
@click.option("--status", "wanted", type=click.Choice(STATUSES), default=None, help="Only this effective status.")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    callback=lambda _c, _p, v: [tag_option(t) for t in v],
    help="Only with this tag (repeatable: any of them).",
)
@click.option("--source", type=click.Choice(SOURCES), default=None, help="Only those that came from here.")
@pass_state
def list_cmd(state: State, wanted: str | None, tags: list[str], source: str | None) -> None:
    """Every subscriber: email, name, effective status, source, tags and consent record (tab-separated)."""
    for row in iter_subscribers(list_engine(state.config), status=wanted, tags=tags):
        if source is None or row.source == source:
            click.echo("\t".join([row.email, row.name, row.effective, row.source, ";".join(row.tags), row.consent]))


@subscribers.command()
@pass_state
def stats(state: State) -> None:
    """Counts by effective status, by source and by tag; the suppression list by reason."""
    config = state.config
    db = list_engine(config)
    by_status = count_by(db, "effective")
    click.echo(f"subscribers ({config.state_shown}): {sum(by_status.values()):,}")
    for status in STATUSES:
        click.echo(f"  {status:<13} {by_status.get(status, 0):>9,}")
    by_source = count_by(db, "source")
    click.echo("by source: " + ", ".join(f"{s} {by_source.get(s, 0):,}" for s in SOURCES))
    tags = tag_counts(db)
    click.echo("by tag: " + (", ".join(f"{t} {n:,}" for t, n in tags.items()) or "no tags yet"))
    by_reason = counts_by_reason(db)
    erased = erasure_count(db)
    click.echo(f"suppression list: {sum(by_reason.values()) + erased:,} addresses")
    for reason in REASONS:
        click.echo(f"  {reason:<13} {by_reason.get(reason, 0):>9,}")
    click.echo(f"  {'erased':<13} {erased:>9,}  (kept as one-way hashes)")


@subscribers.command()
@click.argument("email")
@click.option(
    "--reason", type=click.Choice(REASONS), default="unsubscribed", show_default=True, help="Why mail must stop."
)
@pass_state
def unsubscribe(state: State, email: str, reason: str) -> None:
    """Add EMAIL to the suppression list: no send will reach it, whatever any source says."""
    address = normalize_address(email, "EMAIL")
    db = list_engine(state.config)
    existing = reason_for(db, address)
    if existing:
        click.echo(f"{address} is already suppressed ({existing}); nothing changed")
        return
    suppress(db, address, SuppressionReason(reason), "by the command line")
    row = find(db, address)
    where = (
        f"on the list since {row.consent_at:%Y-%m-%d} ({row.source})" if row else "not on the list; kept for the future"
    )
    click.echo(f"{address}: suppressed ({reason}); {where}")


@subscribers.command()
@click.argument("email")
@pass_state
def resubscribe(state: State, email: str) -> None:
    """Remove EMAIL from the suppression list (or lift its erasure); its own status still applies."""
    address = normalize_address(email, "EMAIL")
    db = list_engine(state.config)
    lifted = lift_erasure(db, address) if is_erased(db, address) else False
    if unsuppress(db, address) or lifted:
        click.echo(f"{address}: removed from the suppression list")
    else:
        click.echo(f"{address} was not suppressed; nothing changed")
    row = find(db, address)
    if row is None:
        warn(f"{address} is not on the list; add it with `newsletter subscribers add {address}`")
    elif row.status != SubscriberStatus.ACTIVE:
        where = f"{state.config.path('subscribers')}:{row.line}" if row.source == SubscriberSource.CSV else address
        warn(f"{where}: the status is still {row.status!r}; set it to active")


@subscribers.command()
@click.argument("email")
@pass_state
def show(state: State, email: str) -> None:
    """What is known about EMAIL: its list row, its suppression, what it was sent, every bounce and complaint."""
    from ..state.bounces import events_for, mailed
    from ..state.suppressions import suppression_of

    config = state.config
    address = normalize_address(email, "EMAIL")
    db = list_engine(config)
    row = find(db, address)
    suppression = suppression_of(db, address)
    sent = mailed(db, address, limit=1000)
    events = events_for(db, address)
    click.echo(address)
    if row is not None:
        name = f" ({row.name})" if row.name else ""
        where = f", {config.path('subscribers')} line {row.line}" if row.source == SubscriberSource.CSV else ""
        tags = f"; tags {', '.join(row.tags)}" if row.tags else ""
        click.echo(f"  list:      {row.source}{where}{name}, {row.status}{tags}")
        click.echo(f"  consent:   {row.consent}")
    else:
        click.echo("  list:      not on the list")
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


def _refuse_own_files(config: Config, out: Path) -> None:
    """The export never replaces the list it is made from, nor the state database."""
    own = {"the list itself ([paths] subscribers)": config.path("subscribers")}
    if not config.state_is_url:
        own["the state database ([paths] state)"] = config.path("state")
    target = out.resolve()
    for what, path in own.items():
        same = target == path.resolve()
        if not same and target.exists() and path.exists():
            same = os.path.samefile(target, path)
        if same:
            raise NewsletterError(
                f"--out {out}: is {what}; an export holds every subscriber with source and consent columns, not "
                f"the file's own rows, so writing it there would change the list; choose another file"
            )


def _export(config: Config, out: TextIO) -> int:
    db = list_engine(config)
    custom = [name for name in field_names(db) if name not in EXPORT_COLUMNS]
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS + custom, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    count = 0
    for row in iter_subscribers(db):
        writer.writerow(
            {
                **row.fields,
                "email": row.email,
                "name": row.name,
                "first_name": row.first_name,
                "status": row.effective,
                "source": row.source,
                "tags": ";".join(row.tags),
                "subscribed_at": f"{row.consent_at:%Y-%m-%dT%H:%M:%SZ}",
                "confirmed_at": f"{row.confirmed_at:%Y-%m-%dT%H:%M:%SZ}" if row.confirmed_at else "",
                "consent": row.consent_how + (f": {row.consent_detail}" if row.consent_detail else ""),
            }
        )
        count += 1
    return count


@subscribers.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file (replaced atomically, mode 0600) instead of standard output.",
)
@pass_state
def export(state: State, out: Path | None) -> None:
    """Write the list as CSV with the effective status, source, tags and consent record.

    `subscribers import` reads it back; a re-import can never bring back someone who left.
    """
    config = state.config
    if out is None:
        _export(config, sys.stdout)
        return
    _refuse_own_files(config, out)
    # Written beside the target, flushed to disk and renamed over it: a reader sees the old file or the
    # whole new one. Personal data: a new file is 0600, one written over keeps the mode its owner gave it.
    try:
        mode = mode_to_keep(out)
        fd, name = tempfile.mkstemp(dir=out.resolve().parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise NewsletterError(f"{out}: cannot write the export ({exc.strerror}); choose another --out") from None
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            count = _export(config, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        raise NewsletterError(f"{out}: cannot write the export ({exc.strerror}); choose another --out") from None
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"wrote {count:,} subscribers to {out}", err=True)


from . import subscribers_edit  # noqa: E402, F401  (registers add, remove, tag, untag, import)
