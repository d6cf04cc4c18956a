"""What `newsletter feed pull` remembers: each feed's validators and every entry it wrote.

An entry is known by its id (the feed's guid) for good: deleting its file never brings it back, and
the hash of what the pull wrote tells a file edited here from one still as written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from .digests import naive_utc
from .engine import insert, utcnow
from .schema import feed_entries, feeds

_BATCH = 500  # source ids per IN (...) lookup


@dataclass(frozen=True)
class FeedRecord:
    url: str
    etag: str
    last_modified: str
    first_pulled_at: dt.datetime  # naive UTC
    last_pulled_at: dt.datetime


@dataclass(frozen=True)
class EntryRecord:
    source_id: str
    feed: str
    path: str  # the file's name in the issues folder
    written_hash: str
    fingerprint: str


def feed_record(engine: Engine, url: str) -> FeedRecord | None:
    with engine.connect() as conn:
        row = conn.execute(select(feeds).where(feeds.c.url == url)).first()
    if row is None:
        return None
    return FeedRecord(row.url, row.etag, row.last_modified, row.first_pulled_at, row.last_pulled_at)


def record_pull(engine: Engine, url: str, etag: str, last_modified: str, when: dt.datetime | None = None) -> None:
    """A pull of `url` that got to the end (or found it unchanged): its validators and time (default now)."""
    now = naive_utc(when) if when is not None else utcnow()
    stmt = insert(engine, feeds).values(
        url=url, etag=etag, last_modified=last_modified, first_pulled_at=now, last_pulled_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["url"],
        set_={"etag": etag, "last_modified": last_modified, "last_pulled_at": now},
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def known_entries(engine: Engine, source_ids: Iterable[str]) -> dict[str, EntryRecord]:
    ids = list(dict.fromkeys(source_ids))
    found: dict[str, EntryRecord] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), _BATCH):
            rows = conn.execute(select(feed_entries).where(feed_entries.c.source_id.in_(ids[start : start + _BATCH])))
            for row in rows:
                found[row.source_id] = EntryRecord(row.source_id, row.feed, row.path, row.written_hash, row.fingerprint)
    return found


def record_entries(engine: Engine, entries: Sequence[EntryRecord]) -> None:
    """Entries written (or found already written) by a pull, in one transaction."""
    if not entries:
        return
    now = utcnow()
    with engine.begin() as conn:
        for entry in entries:
            values = {
                "feed": entry.feed,
                "path": entry.path,
                "written_hash": entry.written_hash,
                "fingerprint": entry.fingerprint,
                "updated_at": now,
            }
            stmt = insert(engine, feed_entries).values(source_id=entry.source_id, pulled_at=now, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["source_id"], set_=values))


def note_fingerprint(engine: Engine, source_id: str, fingerprint: str) -> None:
    """The feed's version of an entry whose file was left as edited here: said once, not at every pull."""
    with engine.begin() as conn:
        conn.execute(
            update(feed_entries)
            .where(feed_entries.c.source_id == source_id)
            .values(fingerprint=fingerprint, updated_at=utcnow())
        )
