"""A feed entry as an article file: `issues/<date>-<slug>.md`, its front matter and its Markdown body.

The front matter is what the issue's readers and the web version need: title, date (the post's
published time in the schedule's zone), author, summary, tags, canonical_url (the post on the
blog) and source_id (the feed's id for it, which makes pulls idempotent). The file is written
whole or not at all (a temporary file renamed over it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from .convert import summary_text, to_markdown
from .parse import Entry

SLUG_MAX = 60
TITLE_MAX = 200  # a title becomes the subject: it must stay one reasonable header line


# libyaml's emitter when PyYAML was built with it: the same text, a tenth of the time.
_SafeDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_SafeDumper):  # type: ignore[valid-type,misc]
    """Dates written as text stay unquoted (the article loader reads them as text too)."""


_Dumper.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeDumper.yaml_implicit_resolvers.items()
}


def slugify(text: str) -> str:
    """'Hello, Wörld!' -> 'hello-world': lower-case ASCII words joined by '-', at most SLUG_MAX characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > SLUG_MAX:
        slug = slug[:SLUG_MAX].rsplit("-", 1)[0] or slug[:SLUG_MAX]
    return slug


def entry_slug(entry: Entry) -> str:
    """From the title; else the last part of the post's address; else 'post'."""
    slug = slugify(entry.title)
    if not slug and entry.link:
        parts = [p for p in urlsplit(entry.link).path.split("/") if p]
        slug = slugify(unquote(parts[-1]).rsplit(".", 1)[0]) if parts else ""
    return slug or "post"


def wall_time(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """'2026-11-20 14:30': an article's date, a wall time in the schedule's zone."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _title(entry: Entry, summary: str) -> str:
    title = entry.title or summary or (entry.link and urlsplit(entry.link).path.strip("/")) or "Untitled post"
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rsplit(" ", 1)[0] + "…"
    return title


@dataclass(frozen=True)
class Written:
    """What a pull writes for an entry: the file's name, its bytes and how the lines name it."""

    name: str  # <date>-<slug>.md
    text: str
    title: str
    date: str

    @property
    def data(self) -> bytes:
        return self.text.encode("utf-8")

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def render_entry(
    entry: Entry, tz: dt.tzinfo, pulled_at: dt.datetime, *, name: str = "", send_at: str = ""
) -> Written:
    """The file for `entry`; `name` keeps an earlier file's name (its slug is the campaign key and the
    web address); `send_at` sends it as its own issue then."""
    published = entry.published or pulled_at
    date = wall_time(published, tz)
    body_html = entry.content_html or entry.summary_html
    summary = summary_text(entry.summary_html or entry.content_html)
    meta: dict[str, Any] = {"title": _title(entry, summary), "date": date}
    if entry.author:
        meta["author"] = entry.author
    if summary:
        meta["summary"] = summary
    if entry.tags:
        meta["tags"] = list(entry.tags)
    if entry.link:
        meta["canonical_url"] = entry.link
    meta["source_id"] = entry.source_id
    if send_at:
        meta["send_at"] = send_at
    front = yaml.dump(meta, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)
    body = to_markdown(body_html, entry.base) if body_html.strip() else ""
    text = f"---\n{front}---\n\n{body}"
    return Written(name or f"{published.astimezone(tz):%Y-%m-%d}-{entry_slug(entry)}.md", text, meta["title"], date)


def free_name(folder: Path, wanted: str, taken: set[str]) -> str:
    """`wanted`, or `<stem>-2.md`, `-3`... when a file of that name exists or this pull took it already."""
    stem = wanted.removesuffix(".md")
    name, number = wanted, 1
    while name in taken or (folder / name).exists():
        number += 1
        name = f"{stem}-{number}.md"
    return name


def write_atomically(path: Path, data: bytes) -> None:
    """The whole file or nothing: a temporary file beside it (hidden, not an article), then renamed."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; an article is no secret
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
