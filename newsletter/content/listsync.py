"""The CSV at [paths] subscribers as a source of the list: synced into the database before every send.

The rules: the file's valid rows are added or updated (name, fields, tags and, for the rows the CSV
brought in, the status); a row the CSV brought in whose address is no longer in the file (or only on
an invalid line) is deleted. Addresses that came from a signup, an import or the command line are
never removed or re-statused by the file. An erased address is not brought back (a warning names
its line); the suppression list still wins over everything at send time. A missing file changes
nothing. The file is streamed; the addresses seen are kept as 8-byte fingerprints (content.addresses.Seen).

A file that cannot be read right (a stray quote swallowed rows) is refused before anything is removed,
and a file that lost more than a fifth of the CSV's rows at once (being rewritten? cut short?) removes
nobody unless `allow_shrink`: the rows are held, and a send refuses until the operator confirms.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from ..config import Config
from ..errors import NewsletterError
from ..state.listwrite import BatchHook, Incoming, ListWriter, WriteCounts
from ..state.statuses import SubscriberSource, SubscriberStatus
from ..state.subscribers import csv_rows
from .addresses import Seen
from .csvfile import data_lines
from .names import parse_tags
from .subscribers import ListReport, Subscriber, iter_rows

SHRINK_SHARE = 0.2  # a list (or a file) that lost more than this share at once...
SHRINK_MIN = 10  # ...and more than this many addresses needs the operator's confirmation


def shrinks_too_much(before: int, after: int) -> bool:
    """Whether going from `before` to `after` addresses is more than a list's ordinary coming and going."""
    lost = before - after
    return lost > SHRINK_MIN and lost > before * SHRINK_SHARE


@dataclass
class SyncResult:
    """What one sync did; `report` holds the file's problems (`skipped_message()` for a send)."""

    path: Path
    report: ListReport
    counts: WriteCounts
    missing: bool = False  # the file does not exist: nothing was changed
    kept: int = 0  # with `missing`: rows that came from the file and stay as they are
    owned: int = 0  # rows the file had brought in before this sync
    held: int = 0  # of those, rows no longer in the file but kept: too many at once (see `held_message`)

    def held_message(self) -> str:
        return (
            f"{self.path}: {self.held:,} of the {self.owned:,} subscribers it brought in are not in the file any more "
            f"(more than {SHRINK_SHARE:.0%} at once: is it complete?); they stay on the list until a send with "
            f"--allow-shrink confirms they left"
        )

    def summary(self) -> str:
        if self.missing:
            return f"{self.path} not found: nothing synced" + (
                f"; the {self.kept:,} subscribers it brought in earlier are kept" if self.kept else ""
            )
        c = self.counts
        return (
            f"{self.path}: {c.added:,} added, {c.updated:,} updated, {c.removed:,} removed (no longer in the file), "
            f"{c.unchanged:,} unchanged, {c.suppressed:,} erased addresses left out, "
            f"{self.report.invalid:,} invalid rows" + (f"; {self.held_message()}" if self.held else "")
        )


def parse_when(text: str) -> dt.datetime | None:
    """A consent time as sources write it: ISO dates and times (with a zone or UTC), else None."""
    text = text.strip().replace("Z", "+00:00")
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _incoming(sub: Subscriber, path: Path) -> Incoming:
    fields = sub.fields
    tags = parse_tags(fields["tags"]) if "tags" in fields else None
    return Incoming(
        email=sub.email,
        name=sub.name,
        first_name=fields.get("first_name", ""),
        fields=fields,
        status=SubscriberStatus(sub.status),
        tags=tags,
        line=sub.line,
        consent_at=parse_when(fields.get("subscribed_at", "")),
        detail=f"{path.name} line {sub.line}",
    )


def sync_csv(
    config: Config,
    engine: Engine,
    *,
    dry_run: bool = False,
    allow_shrink: bool = False,
    on_batch: BatchHook | None = None,
    csv_lines: int | None = None,
) -> SyncResult:
    """Bring the database in line with the CSV (see the module's rules); a dry run keeps nothing.

    `on_batch` hears each written batch's addresses in its transaction (the send's delivery rows).
    `csv_lines`: the file's `data_lines` when the caller counted them already (a send does).
    Raises when the file cannot be read right (nobody is removed then).
    """
    path = config.path("subscribers")
    report = ListReport(path)
    if not path.exists():
        return SyncResult(path, report, WriteCounts(), missing=True, kept=csv_rows(engine))
    seen = Seen(expected=data_lines(path) if csv_lines is None else csv_lines)  # sized once for the whole file
    writer = ListWriter(engine, SubscriberSource.CSV, dry_run=dry_run, on_batch=on_batch)
    try:
        for sub in iter_rows(path, report=report, seen=seen):
            if writer.add(_incoming(sub, path)) == "erased":
                report.add(
                    sub.line,
                    f"{sub.email} was erased (subscribers remove) and is not brought back; delete this row",
                    False,
                )
        if report.unreadable:
            raise NewsletterError(f"{report.unreadable}; nobody was removed from the list: fix the file and run again")
        hold = None if allow_shrink else shrinks_too_much
        owned, held = writer.remove_unseen(lambda key: seen.line_of(key) != 0, hold=hold)
        counts = writer.finish()
    finally:
        writer.close()
    return SyncResult(path, report, counts, owned=owned, held=held)
