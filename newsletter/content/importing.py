"""`subscribers import FILE`: another service's export into the list, streamed, in batches.

Active rows are added, or update the subscriber already there (name, custom fields, more tags;
a pending signup becomes active); rows the export marks unsubscribed, cleaned, bounced or disabled go
to the suppression list, never in as active; an address suppressed or erased here is never added or
changed. Each row it cannot take is reported with its line. With `dry_run` everything is counted in
a transaction that is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from ..state.listwrite import Incoming, ListWriter, WriteCounts
from ..state.statuses import SubscriberSource
from .sources import ExportFile, ImportRow
from .subscribers import ListReport


@dataclass
class ImportResult:
    path: Path
    format: str
    report: ListReport
    counts: WriteCounts
    skipped: int  # rows read but not taken: invalid, or not confirmed / flagged at the source
    dry_run: bool = False

    def summary(self) -> str:
        c = self.counts
        return (
            f"{self.path} ({self.format}): {c.added:,} added, {c.updated:,} updated, {c.suppressed:,} suppressed, "
            f"{self.skipped:,} skipped ({c.unchanged:,} already as in the file)"
            + ("; dry run: nothing was changed" if self.dry_run else "")
        )


def _incoming(row: ImportRow, detail: str) -> Incoming:
    fields = {"email": row.email, "name": row.name, "first_name": row.first_name, **row.fields}
    return Incoming(
        email=row.email,
        name=row.name,
        first_name=row.first_name,
        fields=fields,
        tags=row.tags,
        line=0,
        consent_at=row.consent_at,
        detail=detail,
    )


def import_file(
    engine: Engine,
    path: Path,
    *,
    format_name: str = "auto",
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
) -> ImportResult:
    report = ListReport(path)
    skipped = 0
    with ExportFile(path, format_name, mapping or {}, report) as export:
        name = export.format.name
        writer = ListWriter(engine, SubscriberSource.IMPORT, dry_run=dry_run)
        try:
            for row in export.rows():
                where = f"{name} export {path.name} line {row.line}"
                kind, reason, why = row.verdict
                if kind == "active":
                    writer.add(_incoming(row, where))
                elif kind == "suppress" and reason is not None:
                    writer.suppress(row.email, reason, f"{why}: {where}")
                else:
                    skipped += 1
                    report.add(row.line, f"{row.email}: {why}", False)
            counts = writer.finish()
        finally:
            writer.close()
    return ImportResult(path, name, report, counts, skipped + report.invalid, dry_run)
