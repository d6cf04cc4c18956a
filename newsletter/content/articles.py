"""Articles: Markdown files with YAML front matter in `issues/`, read into plain data.

An Article is what `issues/<yyyy-mm-dd>-<slug>.md` says; nothing here renders HTML (render/ does).
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ContentError
from .limits import (
    MAX_ARTICLE_BYTES,
    MAX_FRONT_MATTER_VALUES,
    front_matter_too_big,
    front_matter_too_deep,
    markdown_problem,
)

WORDS_PER_MINUTE = 230
KNOWN_KEYS = {"title", "date", "author", "summary", "subject", "tags", "draft", "send_at", "excerpt", "canonical_url"}
# The "read more" cut (Hugo's and WordPress's spelling): the text before it is the digest's excerpt.
MORE = re.compile(r"<!--\s*more\s*-->", re.I)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_WORD = re.compile(r"[\w’'-]+", re.U)


class _FrontMatterLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so a bad date gets our error message, not a crash."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Article:
    """One Markdown article. `extra` keeps unknown front-matter keys for templates."""

    path: Path
    slug: str
    title: str
    date: dt.datetime
    body: str
    author: str = ""
    summary: str = ""
    subject: str = ""
    tags: tuple[str, ...] = ()
    draft: bool = False
    # When the scheduler sends this article as its own issue: naive = a wall time in [schedule]
    # timezone, aware = written with an offset. None: not scheduled.
    send_at: dt.datetime | None = None
    # Markdown for a digest's entry: front matter `excerpt`, or the body before `<!-- more -->`.
    excerpt: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Where the article was first published (a blog post pulled from its feed): the web version's
    # <link rel="canonical"> and the email's "Read on the blog".
    canonical_url: str = ""
    # SHA-256 of the file as it was read: what was rendered is what the campaign is keyed on,
    # even if the file changes on disk while `send` is waiting at its prompt.
    source_hash: str = ""

    @property
    def words(self) -> int:
        return len(_WORD.findall(self.body))

    @property
    def reading_minutes(self) -> int:
        return max(1, math.ceil(self.words / WORDS_PER_MINUTE))

    def is_published(self, now: dt.datetime) -> bool:
        """Not a draft, not dated in the future and not scheduled for later: what readers may see.

        `now` is a wall time in the schedule's zone (naive, like article dates) or aware; a send_at
        with an offset is compared with a naive `now` read in the machine's zone, as dates with an
        offset are.
        """
        wall = now.replace(tzinfo=None)
        if self.draft or self.date > wall:
            return False
        if self.send_at is None or self.send_at.tzinfo is None:
            return self.send_at is None or self.send_at <= wall
        return self.send_at <= (now if now.tzinfo is not None else now.astimezone())

    def send_time(self, tz: dt.tzinfo) -> dt.datetime | None:
        """`send_at` as an instant in `tz`; a wall time skipped by a DST change means the instant after the gap."""
        if self.send_at is None:
            return None
        moment = self.send_at if self.send_at.tzinfo is not None else self.send_at.replace(tzinfo=tz)
        return moment.astimezone(dt.UTC).astimezone(tz)


    def __getattr__(self, name: str) -> Any:
        # Templates reach unknown front-matter keys as article.<key>.
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(name)


def _parse_date(value: Any, where: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone().replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str):
        try:
            return _parse_date(dt.datetime.fromisoformat(value.strip()), where)
        except ValueError:
            pass
    raise ContentError(f"{where}: date: {value!r} is not a date; write it as YYYY-MM-DD (optionally HH:MM)")


def _parse_send_at(value: Any, where: str) -> dt.datetime | None:
    """YYYY-MM-DD HH:MM (in the schedule's zone), optionally with an offset (+01:00, Z)."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    problem = f"{where}: send_at: {value!r}"
    if _DATE_ONLY.fullmatch(text):
        raise ContentError(f"{problem} has no time of day; write it as YYYY-MM-DD HH:MM, e.g. {text} 08:00")
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ContentError(
            f"{problem} is not a date and time; write it as YYYY-MM-DD HH:MM (in [schedule] timezone), "
            f"or with an offset: 2026-12-01 08:00+01:00"
        ) from None


def _canonical_url(meta: dict[str, Any], where: str) -> str:
    """An absolute http(s) address, nothing else: it becomes a link in the email and the web page."""
    url = _text(meta, "canonical_url", where)
    if url and (not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url, re.I) or not url.isprintable()):
        raise ContentError(
            f"{where}: canonical_url: {url!r} is not a full http(s) address; write it like https://blog.example.org/post/"
        )
    return url


def _excerpt(meta: dict[str, Any], body: str, where: str) -> str:
    written = _text(meta, "excerpt", where)
    if written:
        return written
    cut = MORE.search(body)
    return body[: cut.start()].strip() if cut else ""


def _text(meta: dict[str, Any], key: str, where: str) -> str:
    value = meta.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ContentError(f"{where}: {key}: expected text, got {type(value).__name__}; put it in quotes")
    return str(value).strip()


def load_article(path: Path) -> Article:
    """Read one article; every problem is a ContentError naming the file (and line when known)."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_ARTICLE_BYTES + 1)  # never more: a 100 MB file is refused, not read
    except FileNotFoundError:
        raise ContentError(f"{path}: no such article file") from None
    except OSError as exc:
        raise ContentError(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_ARTICLE_BYTES:
        raise ContentError(
            f"{path}: over {MAX_ARTICLE_BYTES // 2**20} MB ({MAX_ARTICLE_BYTES:,} bytes), more than an article "
            f"can be; split it, or link big content as a file in issues/"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ContentError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8") from None
    match = _FRONT_MATTER.match(text)
    if not match:
        raise ContentError(
            f"{path}:1: no front matter; start the file with a '---' line, then title: and date:, then a closing '---'"
        )
    if front_matter_too_deep(match.group(1)):
        raise ContentError(f"{path}:2: front matter is nested too deeply to read; flatten its lists")
    try:
        meta = yaml.load(match.group(1), Loader=_FrontMatterLoader) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ContentError(f"{path}{where}: front matter is not valid YAML ({problem}); fix that line") from None
    except RecursionError:
        raise ContentError(f"{path}:2: front matter is nested too deeply to read; flatten its lists") from None
    if not isinstance(meta, dict):
        raise ContentError(f"{path}:2: front matter must be 'key: value' lines, not a {type(meta).__name__}")
    if front_matter_too_big(meta):
        raise ContentError(
            f"{path}:2: front matter holds more than {MAX_FRONT_MATTER_VALUES:,} values once its YAML aliases "
            f"(*name) are expanded; write the values out instead"
        )
    where = str(path)
    title = _text(meta, "title", where)
    if not title:
        raise ContentError(f"{where}: front matter has no title; add a line 'title: Your title'")
    if "date" not in meta or meta["date"] in (None, ""):
        raise ContentError(f"{where}: front matter has no date; add a line 'date: YYYY-MM-DD'")
    tags_raw = meta.get("tags") or []
    if isinstance(tags_raw, str):
        tags_raw = [t.strip() for t in tags_raw.split(",") if t.strip()]
    if not isinstance(tags_raw, list):
        raise ContentError(f"{where}: tags: expected a list like [privacy, tls] or 'privacy, tls'")
    draft = meta.get("draft", False)
    if not isinstance(draft, bool):
        raise ContentError(f"{where}: draft: expected true or false, got {draft!r}")
    body = text[match.end() :]
    problem = markdown_problem(body)
    if problem is not None:
        line = text[: match.end()].count("\n") + problem[0]
        raise ContentError(f"{path}:{line}: {problem[1]}")
    return Article(
        path=path,
        slug=path.stem,
        title=title,
        date=_parse_date(meta["date"], where),
        body=body,
        author=_text(meta, "author", where),
        summary=_text(meta, "summary", where),
        subject=_text(meta, "subject", where),
        tags=tuple(str(t) for t in tags_raw),
        draft=draft,
        send_at=_parse_send_at(meta.get("send_at"), where),
        excerpt=_excerpt(meta, body, where),
        canonical_url=_canonical_url(meta, where),
        extra={k: v for k, v in meta.items() if k not in KNOWN_KEYS},
        source_hash=hashlib.sha256(raw).hexdigest(),
    )


def article_paths(issues_dir: Path) -> list[Path]:
    if not issues_dir.is_dir():
        raise ContentError(f"{issues_dir}: issues folder not found; create it or set [paths] issues")
    return sorted(p for p in issues_dir.glob("*.md") if p.is_file() and not p.name.startswith("."))


def load_articles(issues_dir: Path) -> list[Article]:
    """All articles, newest first. A broken file stops with its error (nothing silently missing)."""
    articles = [load_article(p) for p in article_paths(issues_dir)]
    return sorted(articles, key=lambda a: (a.date, a.slug), reverse=True)


def load_articles_skipping_broken(issues_dir: Path) -> tuple[list[Article], list[ContentError]]:
    """All readable articles (newest first) and one error per file that cannot be read.

    For what a schedule sends: one work-in-progress file must not stop a digest or a scheduled issue.
    """
    articles, problems = [], []
    for path in article_paths(issues_dir):
        try:
            articles.append(load_article(path))
        except ContentError as exc:
            problems.append(exc)
    return sorted(articles, key=lambda a: (a.date, a.slug), reverse=True), problems


def latest(articles: Sequence[Article]) -> Article:
    """The newest published article; the newest draft when there are only drafts."""
    published = [a for a in articles if not a.draft]
    pool = published or list(articles)
    if not pool:
        raise ContentError("no articles yet; write one as issues/YYYY-MM-DD-slug.md")
    return max(pool, key=lambda a: (a.date, a.slug))


def resolve_article(spec: str, issues_dir: Path) -> Article:
    """ISSUE on the command line: a path, a slug, or `latest`."""
    if spec == "latest":
        return latest(load_articles(issues_dir))
    path = Path(spec)
    if spec.endswith(".md") or path.is_file():
        return load_article(path)
    candidate = issues_dir / f"{spec}.md"
    if candidate.is_file():
        return load_article(candidate)
    slugs = [p.stem for p in article_paths(issues_dir)]
    close = difflib.get_close_matches(spec, slugs, n=3, cutoff=0.4)
    close += [s for s in slugs if spec in s and s not in close][:3]
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(slugs[-5:]) or 'none'}"
    raise ContentError(f"no article {spec!r} in {issues_dir}/; {hint} (or use 'latest')")
