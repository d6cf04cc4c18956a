"""Writing many subscribers at once: the CSV sync and `subscribers import`, in batches, in flat memory.

Each batch reads the rows it touches (one SELECT), then inserts the new addresses and updates only
the rows that changed, on one DBAPI connection in plain SQL (the same SQL for SQLite and
PostgreSQL). The suppression list and the erasures are read once; an import never adds or changes
a suppressed or erased address, and the CSV never brings back an erased one. A dry run does all of
it in one transaction and rolls it back, so its counts are exact and nothing is kept.
"""

from __future__ import annotations

import datetime as dt
import json
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine

from .engine import dbapi_sql, dbapi_time, utcnow
from .erasure import erased_hashes, erasure_hash
from .statuses import SubscriberSource, SubscriberStatus, SuppressionReason
from .suppressions import suppressed_addresses

S = SubscriberStatus
SUPPRESSING = (S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED)
BUILT_IN_FIELDS = frozenset({"email", "name", "first_name", "status", "tags"})
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class Incoming:
    """One subscriber as a source states it. `tags` None: the source says nothing about tags."""

    email: str
    name: str
    first_name: str
    fields: Mapping[str, str]
    status: SubscriberStatus = S.ACTIVE
    tags: tuple[str, ...] | None = None
    line: int = 0
    consent_at: dt.datetime | None = None
    detail: str = ""  # the consent record of a new row: "subscribers.csv line 4", "mailchimp export x.csv line 9"


class _Existing(NamedTuple):
    id: int
    name: str
    first_name: str
    status: str
    source: str
    fields: str
    line: int


@dataclass
class WriteCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0  # not added or changed: suppressed or erased (an import), erased (the CSV)
    removed: int = 0  # CSV rows gone from the file


_INSERT = (
    "INSERT INTO subscribers (email_key, email, name, first_name, status, source, fields, line, consent_how,"
    " consent_at, consent_detail, consent_ip, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)"
)
# consent_how/consent_at stay as they are unless given (only a pending signup confirmed by an import changes them).
_UPDATE = (
    "UPDATE subscribers SET name = ?, first_name = ?, status = ?, source = ?, fields = ?, line = ?,"
    " consent_how = COALESCE(?, consent_how), consent_at = COALESCE(?, consent_at), updated_at = ? WHERE id = ?"
)
_SUPPRESS = (
    "INSERT INTO suppressions (email, reason, detail, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (email) DO NOTHING"
)


BatchHook = Callable[[Any, list[str]], None]


class ListWriter:
    """Queues subscribers and writes them a batch at a time; `finish()` commits (or rolls back a dry run).

    `on_batch(raw_connection, email_keys)` runs after each batch is written, in the batch's own
    transaction: a send gives the batch's addresses their delivery rows there, so it can start
    delivering while the rest of a big list is still being read.
    """

    def __init__(
        self,
        engine: Engine,
        source: SubscriberSource,
        *,
        dry_run: bool = False,
        batch: int = 1000,
        on_batch: BatchHook | None = None,
    ) -> None:
        self.engine = engine
        self.on_batch = on_batch
        self.source = source
        self.dry_run = dry_run
        self.batch = batch
        self.counts = WriteCounts()
        self.now = utcnow()
        self.stamp = dbapi_time(engine, self.now)
        self.suppressed = suppressed_addresses(engine)
        self.erased = erased_hashes(engine)
        self.queue: list[Incoming] = []
        self.suppressions: list[tuple[str, str, str, Any]] = []
        self.known_fields: set[str] = set()
        self.raw: Any = engine.raw_connection()

    # --- the caller's side ---------------------------------------------------------------------

    def add(self, row: Incoming) -> str:
        """Queue a row; "erased" or "suppressed" when it is left out at once (counted), else "queued"."""
        key = row.email.lower()
        if self.erased and erasure_hash(key) in self.erased:
            self.counts.suppressed += 1
            return "erased"
        if self.source != SubscriberSource.CSV and key in self.suppressed:
            self.counts.suppressed += 1
            return "suppressed"
        self.queue.append(row)
        if len(self.queue) >= self.batch:
            self.flush()
        return "queued"

    def suppress(self, email: str, reason: SuppressionReason, detail: str) -> None:
        """A source says this address left (unsubscribed, cleaned, disabled...): it must never be mailed."""
        key = email.lower()
        self.counts.suppressed += 1
        if key not in self.suppressed:  # (an address already suppressed keeps its first reason)
            self.suppressions.append((key, str(reason), detail[:300], self.stamp))
            if len(self.suppressions) >= self.batch:
                self.flush()

    def remove_unseen(
        self, seen: Callable[[str], bool], page: int = 5000, *, hold: Callable[[int, int], bool] | None = None
    ) -> tuple[int, int]:
        """The CSV sync's last step: its own rows whose address is no longer in the file are deleted.

        `hold(owned, left)` may keep them instead (a file that lost too many rows at once may be
        half-written): then nothing is deleted. Returns (rows the CSV owned, rows held back).
        Read in pages of ids, so neither the rows nor the ids of a big list are ever all in memory at once.
        """
        self.flush()
        gone = array("q")
        owned = after = 0
        while True:
            found = self._select(
                "SELECT id, email_key FROM subscribers WHERE source = ? AND id > ? ORDER BY id LIMIT ?",
                [str(SubscriberSource.CSV), after, page],
            )
            owned += len(found)
            gone.extend(ident for ident, key in found if not seen(key))
            if len(found) < page:
                break
            after = found[-1][0]
        if gone and hold is not None and hold(owned, owned - len(gone)):
            return owned, len(gone)
        for start in range(0, len(gone), 500):
            self._execute("DELETE FROM subscribers WHERE id = ?", [(i,) for i in gone[start : start + 500]])
            self._commit()
        self.counts.removed += len(gone)
        return owned, 0

    def finish(self) -> WriteCounts:
        try:
            self.flush()
            if self.dry_run:
                self.raw.rollback()
            else:
                self.raw.commit()
        finally:
            self.close()
        return self.counts

    def close(self) -> None:
        if self.raw is not None:
            self.raw.rollback()
            self.raw.close()
            self.raw = None

    # --- one batch -----------------------------------------------------------------------------

    def flush(self) -> None:
        batch, self.queue = self.queue, []
        suppressions, self.suppressions = self.suppressions, []
        if not batch and not suppressions:
            return
        try:
            self._execute(_SUPPRESS, suppressions)
            if batch:
                self._write(batch)
                if self.on_batch is not None and not self.dry_run:
                    self.on_batch(self.raw, [row.email.lower() for row in batch])
        except BaseException:
            self.raw.rollback()
            raise
        self._commit()

    def _commit(self) -> None:
        if not self.dry_run:
            self.raw.commit()

    def _execute(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        rows = list(rows)
        if not rows:
            return
        cursor = self.raw.cursor()
        try:
            cursor.executemany(dbapi_sql(self.engine, sql), rows)
        finally:
            cursor.close()

    def _select(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cursor = self.raw.cursor()
        try:
            cursor.execute(dbapi_sql(self.engine, sql), params)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _existing(self, keys: list[str]) -> tuple[dict[str, _Existing], dict[int, set[str]]]:
        marks = ", ".join("?" * len(keys))
        rows = self._select(
            f"SELECT email_key, id, name, first_name, status, source, fields, line FROM subscribers "
            f"WHERE email_key IN ({marks})",
            keys,
        )
        found = {r[0]: _Existing(*r[1:]) for r in rows}
        tags: dict[int, set[str]] = {e.id: set() for e in found.values()}
        if found:
            ids = list(tags)
            for ident, tag in self._select(
                f"SELECT subscriber_id, tag FROM subscriber_tags WHERE subscriber_id IN ({', '.join('?' * len(ids))})",
                ids,
            ):
                tags[ident].add(tag)
        return found, tags

    def _write(self, batch: list[Incoming]) -> None:
        unique = list({r.email.lower(): r for r in batch}.items())  # a source's duplicates are its reader's job
        existing, tags = self._existing([key for key, _ in unique])
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        new_tags: list[tuple[str, tuple[str, ...]]] = []
        add_tags: list[tuple[int, str]] = []
        drop_tags: list[tuple[int, str]] = []
        for key, row in unique:
            self._note_fields(row.fields)
            old = existing.get(key)
            if old is None:
                consent = dbapi_time(self.engine, row.consent_at) if row.consent_at else self.stamp
                person = (key, row.email, row.name, row.first_name, str(row.status), str(self.source))
                record = (_dumps(row.fields), row.line, str(self.source), consent, row.detail[:300])
                inserts.append((*person, *record, self.stamp, self.stamp))
                if row.tags:
                    new_tags.append((key, row.tags))
                self.counts.added += 1
                continue
            change = self._merge(old, row)
            if change is None:
                self.counts.suppressed += 1
                continue
            wanted = self._tags(tags[old.id], row.tags)
            add_tags += [(old.id, t) for t in sorted(wanted - tags[old.id])]
            drop_tags += [(old.id, t) for t in sorted(tags[old.id] - wanted)]
            if change != self._current(old) or wanted != tags[old.id]:
                updates.append((*change, self.stamp, old.id))
                self.counts.updated += 1
            else:
                self.counts.unchanged += 1
        self._execute(_INSERT, inserts)
        self._execute(_UPDATE, updates)
        if new_tags:
            marks = ", ".join("?" * len(new_tags))
            ids = dict(
                self._select(
                    f"SELECT email_key, id FROM subscribers WHERE email_key IN ({marks})", [k for k, _ in new_tags]
                )
            )
            add_tags += [(ids[k], t) for k, ts in new_tags for t in ts]
        self._execute("DELETE FROM subscriber_tags WHERE subscriber_id = ? AND tag = ?", drop_tags)
        self._execute(
            "INSERT INTO subscriber_tags (subscriber_id, tag) VALUES (?, ?)"
            " ON CONFLICT (subscriber_id, tag) DO NOTHING",
            add_tags,
        )

    def _note_fields(self, values: Mapping[str, str]) -> None:
        """Custom field names, for templates and export (the columns every subscriber has are not listed)."""
        new = [(name,) for name in values if name not in self.known_fields and name not in BUILT_IN_FIELDS]
        if new:
            self.known_fields.update(name for (name,) in new)
            self._execute("INSERT INTO subscriber_fields (name) VALUES (?) ON CONFLICT (name) DO NOTHING", new)

    def _tags(self, current: set[str], stated: tuple[str, ...] | None) -> set[str]:
        if stated is None:
            return current
        if self.source == SubscriberSource.CSV:
            return set(stated)  # the file is the truth for its tags column
        return current | set(stated)  # an import adds tags, never takes any away

    def _current(self, old: _Existing) -> tuple[Any, ...]:
        return (old.name, old.first_name, old.status, old.source, old.fields, old.line, None, None)

    def _merge(self, old: _Existing, row: Incoming) -> tuple[Any, ...] | None:
        """The row's new (name, first_name, status, source, fields, line, consent_how, consent_at); None: leave it.

        consent_how/consent_at are None when unchanged (the UPDATE keeps them).
        """
        if self.source == SubscriberSource.CSV:
            own = old.source == SubscriberSource.CSV
            status = str(row.status) if own else old.status
            return (row.name, row.first_name, status, old.source, _dumps(row.fields), row.line, None, None)
        if old.status in SUPPRESSING:
            return None  # the row's own status says it left: an import does not bring it back
        name = row.name or old.name
        first_name = row.first_name or old.first_name
        fields = {**json.loads(old.fields), **row.fields, "name": name, "first_name": first_name}
        source = SubscriberSource.IMPORT if old.source == SubscriberSource.CSV else old.source
        if old.status == S.PENDING:  # confirmed elsewhere: the import's consent record replaces the signup's
            consent = dbapi_time(self.engine, row.consent_at) if row.consent_at else self.stamp
            active = (str(S.ACTIVE), str(SubscriberSource.IMPORT))
            return (name, first_name, *active, _dumps(fields), old.line, "import", consent)
        return (name, first_name, old.status, str(source), _dumps(fields), old.line, None, None)
