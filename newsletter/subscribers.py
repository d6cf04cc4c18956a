"""The subscriber list: a CSV streamed row by row (never all in memory)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .errors import NewsletterError


@dataclass(frozen=True)
class Subscriber:
    """One recipient; `fields` holds every CSV column (email and name included) for templates."""

    email: str
    name: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0

    @classmethod
    def of(cls, email: str, name: str = "") -> Subscriber:
        return cls(email=email, name=name, fields={"email": email, "name": name})


def read_columns(path: Path) -> list[str]:
    """The CSV header (for templates' subscriber.<column>); empty when the file is missing."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [c.strip() for c in next(csv.reader(fh), [])]
    except (FileNotFoundError, UnicodeDecodeError):
        return []


def iter_subscribers(path: Path) -> Iterator[Subscriber]:
    """Active subscribers in file order, deduplicated case-insensitively."""
    seen: set[str] = set()
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise NewsletterError(
            f"{path}: subscriber list not found; create it (columns email,name) or set [paths] subscribers"
        ) from None
    with fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "email" not in [f.strip() for f in reader.fieldnames]:
            raise NewsletterError(f"{path}:1: no 'email' column in the header; the first line must be email,name")
        for row in reader:
            clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k}
            email = clean.get("email", "")
            status = clean.get("status", "") or "active"
            if not email or status != "active" or email.lower() in seen:
                continue
            seen.add(email.lower())
            yield Subscriber(email=email, name=clean.get("name", ""), fields=clean, line=reader.line_num)


def sample_subscriber(config: Config) -> Subscriber:
    """Who previews and sample .eml files are personalized for: configured, else the list's first row."""
    nl = config.newsletter
    if nl.sample_email:
        return Subscriber.of(nl.sample_email, nl.sample_name)
    try:
        first = next(iter_subscribers(config.path("subscribers")), None)
    except NewsletterError:
        first = None
    return first or Subscriber.of("reader@example.com", nl.sample_name)
