"""`newsletter feed pull`: the feed's new posts written to the issues folder, each one once.

An entry is known by its id (source_id) in the state database from the moment its file is written:
it is never written twice, and a file deleted here stays deleted. When the feed's version of a known
post changes, the file is rewritten only if it still holds exactly the bytes the pull wrote (their
SHA-256 is kept); a file edited here is left as it is, with one line saying so. Files are written
first and recorded after, so a crash in between leaves files that the next pull finds by the
`source_id` in their front matter and records, instead of writing them twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ..config import Config
from ..errors import ContentError, Locked
from ..state import feeds
from ..state.digests import last_until
from ..state.engine import engine_for
from ..state.feeds import EntryRecord
from ..state.lock import Lock
from ..state.scheduled import record_scheduled
from ..state.statuses import RunDecision
from .article import Written, free_name, render_entry, wall_time, write_atomically
from .fetch import Source, read, source_for
from .parse import Entry, parse

LOCK_NAME = "feed"
LOCK_WAIT = 30.0  # seconds a pull waits for another one to finish
Say = Callable[[str], None]


@dataclass
class PullReport:
    """What one pull did (or, dry, would do); `lines` are what it said, in order."""

    source: str
    dry_run: bool = False
    not_modified: bool = False
    entries: int = 0
    written: list[str] = field(default_factory=list)  # file names
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # changed on the blog, edited here: left alone
    unchanged: int = 0
    older: int = 0  # before --since
    alone: list[str] = field(default_factory=list)  # written with send_at: each goes out as its own issue
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.not_modified:
            return f"feed {self.source}: not changed since the last pull; nothing new"
        verb = "would write" if self.dry_run else "wrote"
        parts = [f"{len(self.written)} new ({verb})"]
        if self.updated:
            parts.append(f"{len(self.updated)} updated")
        if self.kept:
            parts.append(f"{len(self.kept)} kept as edited here")
        parts.append(f"{self.unchanged} already pulled")
        if self.older:
            parts.append(f"{self.older} older than --since")
        count = f"{self.entries} entr{'y' if self.entries == 1 else 'ies'}"
        return f"feed {self.source}: {count}: {', '.join(parts)}"


@dataclass
class _Pull:
    config: Config
    source: Source
    report: PullReport
    say: Say
    overwrite: bool
    first_pulled: dt.datetime | None  # naive UTC; None: this is the feed's first pull
    now: dt.datetime
    records: list[EntryRecord] = field(default_factory=list)
    settled: list[tuple[str, str]] = field(default_factory=list)  # (slug, send_at) never to be mailed alone
    taken: set[str] = field(default_factory=set)
    _on_disk: dict[str, str] | None = None
    _until: tuple[dt.datetime | None] | None = None  # the last digest's window end, read once

    @property
    def folder(self) -> Path:
        return self.config.path("issues")

    def line(self, text: str) -> None:
        self.report.lines.append(text)
        self.say(text)

    def on_disk(self) -> dict[str, str]:
        """source_id -> file name of every article that names one (read once, only when needed)."""
        if self._on_disk is None:
            self._on_disk = source_ids_in(self.folder)
        return self._on_disk

    def record(self, entry: Entry, name: str, written_hash: str) -> None:
        self.records.append(EntryRecord(entry.source_id, self.source.name, name, written_hash, entry.fingerprint))

    def send_at(self, entry: Entry) -> tuple[str, bool]:
        """In [feed] mode "each": (send_at, whether it is already settled). A post that came after the
        feed's first pull goes out at the pull's time; one that was on the blog before gets its own
        published time, settled as not sent, so it is in no digest and never mailed on its own."""
        if self.config.feed.mode != "each":
            return "", False
        tz = self.config.schedule.timezone
        published = entry.published or self.now
        if self.first_pulled is None or published.astimezone(dt.UTC).replace(tzinfo=None) <= self.first_pulled:
            return wall_time(published, tz), True
        return wall_time(self.now, tz), False

    def settle(self) -> None:
        """Record the posts that must never go out alone as decided (keyed as the scheduler keys them)."""
        tz = self.config.schedule.timezone
        for slug, send_at in self.settled:
            when = dt.datetime.strptime(send_at, "%Y-%m-%d %H:%M").replace(tzinfo=tz).astimezone(dt.UTC)
            record_scheduled(engine_for(self.config), slug, when, RunDecision.TOO_OLD)

    def write(self, written: Written) -> None:
        if not self.report.dry_run:
            write_atomically(self.folder / written.name, written.data)

    def new(self, entry: Entry) -> None:
        found = self.on_disk().get(entry.source_id)
        if found is not None:  # written by a pull whose record was lost (a crash, a new state database)
            self.record(entry, found, _hash(self.folder / found))
            self.report.unchanged += 1
            return
        send_at, settled = self.send_at(entry)
        written = render_entry(entry, self.config.schedule.timezone, self.now, send_at=send_at)
        name = free_name(self.folder, written.name, self.taken)
        written = replace(written, name=name)
        self.taken.add(name)
        self.write(written)
        self.record(entry, name, written.hash)
        self.report.written.append(name)
        how = ""
        if settled:
            self.settled.append((name.removesuffix(".md"), send_at))
            how = "; not mailed (on the blog before the feed was followed)"
        elif send_at:
            self.report.alone.append(name)
            how = f"; goes out on its own (send_at {send_at})"
        verb = "would write" if self.report.dry_run else "wrote"
        self.line(f"{verb} {self._shown(name)}: “{written.title}” ({written.date}){how}")
        self._closed_window(entry, name, written.date)

    def _closed_window(self, entry: Entry, name: str, date: str) -> None:
        """A post dated inside a digest that already went out: no digest will hold it; say so."""
        if self.first_pulled is None or self.config.feed.mode != "digest" or self.config.schedule.mode != "digest":
            return
        if self._until is None:
            self._until = (last_until(engine_for(self.config)),)
        until = self._until[0]
        published = (entry.published or self.now).astimezone(dt.UTC).replace(tzinfo=None)
        if until is not None and published <= until:
            slug = name.removesuffix(".md")
            self.line(
                f"note: {self._shown(name)} is dated {date}, inside a digest that already went out: no digest "
                f"will hold it; send it with `newsletter send {slug}` if it should go out"
            )

    def known(self, entry: Entry, known: EntryRecord) -> None:
        if known.fingerprint == entry.fingerprint and not self.overwrite:
            self.report.unchanged += 1
            return
        path = self.folder / known.path
        current = _hash(path) if path.is_file() else ""
        if current != known.written_hash and not self.overwrite:
            self._keep(entry, known, "edited here" if current else "deleted here")
            return
        written = render_entry(
            entry, self.config.schedule.timezone, self.now, name=known.path, send_at=_send_at_of(path)
        )
        self.write(written)
        self.record(entry, known.path, written.hash)
        self.report.updated.append(known.path)
        verb = "would update" if self.report.dry_run else "updated"
        why = "the post changed on the blog" if known.fingerprint != entry.fingerprint else "--overwrite"
        self.line(f"{verb} {self._shown(known.path)}: {why}")

    def _keep(self, entry: Entry, known: EntryRecord, how: str) -> None:
        self.report.kept.append(known.path)
        self.line(
            f"kept {self._shown(known.path)} as it is: the post changed on the blog, but the file was {how} since "
            f"it was pulled (`newsletter feed pull --overwrite` takes the blog's version)"
        )
        if not self.report.dry_run:  # said once, not at every pull
            feeds.note_fingerprint(engine_for(self.config), entry.source_id, entry.fingerprint)

    def _shown(self, name: str) -> str:
        return f"{self.config.paths.issues.as_posix().rstrip('/')}/{name}"


def _hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _front_matter(path: Path) -> dict[str, str]:
    """An article's front matter as text values; {} when it has none or it does not parse."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return {}
    if not text.startswith("---"):
        return {}
    block = text.split("\n---", 1)[0].removeprefix("---")
    try:
        meta = yaml.load(block, Loader=yaml.BaseLoader)  # every value as text: no dates, no numbers
    except yaml.YAMLError:
        return {}
    return meta if isinstance(meta, dict) else {}


def source_ids_in(folder: Path) -> dict[str, str]:
    """source_id -> file name of the articles in `folder` that were pulled from a feed."""
    found: dict[str, str] = {}
    for path in sorted(folder.glob("*.md")):
        try:
            if b"source_id:" not in path.read_bytes():
                continue
        except OSError:
            continue
        value = _front_matter(path).get("source_id")
        if isinstance(value, str) and value:
            found.setdefault(value, path.name)
    return found


def _send_at_of(path: Path) -> str:
    """A rewritten file keeps the send_at it was written with."""
    value = _front_matter(path).get("send_at", "") if path.is_file() else ""
    return value if isinstance(value, str) else ""


def _locked(engine_lock: Lock, source: str) -> None:
    deadline = time.monotonic() + LOCK_WAIT
    while not engine_lock.try_acquire():
        if time.monotonic() > deadline:
            holder = engine_lock.holder()
            who = holder.describe() if holder else "another process"
            raise Locked(f"{source}: the feed is being pulled by {who}; run it again when that pull is done")
        time.sleep(0.2)


def pull(
    config: Config,
    given: str | None = None,
    *,
    dry_run: bool = False,
    since: dt.date | None = None,
    overwrite: bool = False,
    say: Say = lambda _line: None,
    now: dt.datetime | None = None,
) -> PullReport:
    """Pull the feed (`given`, else `[feed] url`) into the issues folder; `say` hears each line as it happens."""
    source = source_for(config, given)
    folder = config.path("issues")
    if not folder.is_dir():
        raise ContentError(f"{folder}: issues folder not found; create it or set [paths] issues")
    engine = engine_for(config)
    lock = Lock(engine, LOCK_NAME)
    if not dry_run:
        _locked(lock, source.name)
    try:
        record = feeds.feed_record(engine, source.name)
        conditional = record is not None and not (dry_run or since or overwrite)
        fetched = read(
            source,
            timeout=config.feed.timeout,
            max_bytes=int(config.feed.max_size_mb * 1_000_000),
            etag=record.etag if conditional and record else "",
            last_modified=record.last_modified if conditional and record else "",
        )
        report = PullReport(source.name, dry_run=dry_run)
        if fetched.body is None:
            report.not_modified = True
            feeds.record_pull(engine, source.name, fetched.etag, fetched.last_modified, now)
            return report
        feed = parse(fetched.body, source.name, fetched.base or source.url)
        for problem in feed.problems:
            report.lines.append(f"warning: {problem}")
            say(f"warning: {problem}")
        moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        work = _Pull(config, source, report, say, overwrite, record.first_pulled_at if record else None, moment)
        _apply(work, feed.entries, since)
        if not dry_run:
            lock.renew()
            work.settle()
            feeds.record_entries(engine, work.records)
            # After a partial pull (--since) the next one must read the whole feed, not get a 304.
            validators = ("", "") if since is not None else (fetched.etag, fetched.last_modified)
            feeds.record_pull(engine, source.name, *validators, moment)
        return report
    finally:
        if not dry_run:
            lock.release()


def _apply(work: _Pull, entries: Iterable[Entry], since: dt.date | None) -> None:
    tz = work.config.schedule.timezone
    ordered = sorted(entries, key=lambda e: ((e.published or work.now).astimezone(dt.UTC), e.position))
    known = feeds.known_entries(engine_for(work.config), (e.source_id for e in ordered))
    for entry in ordered:
        work.report.entries += 1
        if since is not None and (entry.published or work.now).astimezone(tz).date() < since:
            work.report.older += 1
            continue
        record = known.get(entry.source_id)
        if record is None:
            work.new(entry)
        else:
            work.known(entry, record)
