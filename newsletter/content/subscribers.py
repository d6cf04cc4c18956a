"""The subscriber list: a CSV streamed row by row (never all in memory), validated as it is read.

Every row is checked (address syntax with email-validator and no DNS, duplicates case-insensitively,
empty or extra fields, CR/LF in names, unknown statuses, non-UTF-8 bytes); problems go to a
`ListReport` that names line numbers. Invalid rows are skipped, never fatal, so one typo cannot
block a send; `newsletter subscribers check` prints the report and fails on errors.

The suppression list in the state database always wins over the CSV (the send applies it).
"""

from __future__ import annotations

import contextlib
import csv
from array import array
from collections import Counter
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError

from ..config import Config
from ..errors import NewsletterError, StateError
from .addresses import AddressChecker, Seen
from .csvfile import CONTROL, MAX_LINE, header, open_csv, rows, width_problem
from .names import first_name_of, parse_tags

STATUSES = ("active", "unsubscribed", "bounced", "complained")
SENDABLE = "active"
MAX_NAME = 200  # characters of a display name: the To: header must stay readable (and within RFC 5322)
MAX_PROBLEMS_KEPT = 1000  # details kept for printing; every problem is still counted
_MISSING = (
    "subscriber list not found; create it (first line: email,name,status,subscribed_at) or set [paths] subscribers"
)


@dataclass(frozen=True)
class Subscriber:
    """One recipient; `fields` holds what templates see (email, name, first_name and every other column)."""

    email: str
    name: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0

    @classmethod
    def of(cls, email: str, name: str = "") -> Subscriber:
        return cls(email=email, name=name, fields={"email": email, "name": name, "first_name": first_name_of(name)})

    @property
    def status(self) -> str:
        return self.fields.get("status") or SENDABLE


@dataclass(frozen=True)
class Problem:
    line: int
    message: str  # "what is wrong; how to fix it"
    error: bool = True  # False: a warning (the row is still used)


@dataclass
class ListReport:
    """What loading the list found. Filled while streaming; read after the iteration ends.

    A send prints `skipped_message()`; `newsletter subscribers check` prints every problem.
    """

    path: Path
    rows: int = 0  # data rows read (blank lines not counted)
    valid: int = 0  # rows that passed validation, whatever their status
    statuses: Counter[str] = field(default_factory=Counter)  # valid rows by CSV status
    suppressed: int = 0  # valid active rows left out because the state database suppresses them
    errors: int = 0
    warnings: int = 0
    invalid_lines: array[int] = field(default_factory=lambda: array("I"))
    problems: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS_KEPT
    unreadable: str = ""  # the file cannot be read right (a stray quote swallowed rows): never sync or send it

    def add(self, line: int, message: str, error: bool = True) -> None:
        if error:
            self.errors += 1
        else:
            self.warnings += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(Problem(line, message, error))

    @property
    def invalid(self) -> int:
        return len(self.invalid_lines)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    @property
    def not_shown(self) -> int:
        return self.errors + self.warnings - len(self.problems)

    def format(self, problem: Problem) -> str:
        """`subscribers.csv:4: problem; fix` (warnings say so)."""
        kind = "" if problem.error else "warning: "
        return f"{self.path}:{problem.line}: {kind}{problem.message}"

    def lines_text(self, limit: int = 10) -> str:
        shown = ", ".join(str(n) for n in self.invalid_lines[:limit])
        more = self.invalid - limit
        return f"{shown} and {more:,} more" if more > 0 else shown

    def skipped_message(self) -> str:
        """One line for a send: empty when nothing was skipped."""
        if not self.invalid:
            return ""
        rows = "row" if self.invalid == 1 else "rows"
        line_word = "line" if self.invalid == 1 else "lines"
        return (
            f"skipped {self.invalid:,} invalid {rows} of {self.path}: {line_word} {self.lines_text()} "
            f"(details: newsletter subscribers check)"
        )

    def summary(self) -> str:
        by_status = ", ".join(f"{self.statuses[s]:,} {s}" for s in STATUSES if self.statuses[s])
        parts = [f"{self.rows:,} rows", f"{self.valid:,} valid ({by_status or 'none'})", f"{self.invalid:,} invalid"]
        if self.suppressed:
            parts.append(f"{self.suppressed:,} active rows suppressed in the state database")
        counts = (
            f"{self.errors:,} error{'s' * (self.errors != 1)}, {self.warnings:,} warning{'s' * (self.warnings != 1)}"
        )
        return f"{self.path}: {'; '.join(parts)}; {counts}"


def _check_header(path: Path, columns: list[str]) -> None:
    if "email" not in columns:
        lowered = [c.lower() for c in columns]
        hint = " (column names are lower-case)" if "email" in lowered else ""
        raise NewsletterError(f"{path}:1: no 'email' column in the header{hint}; the first line must be email,name,...")


def _read_rows(path: Path, report: ListReport, seen: Seen | None = None) -> Iterator[Subscriber]:
    """Every valid row (any status), in file order, first of each address only.

    `seen` (when given) ends up holding every valid row's address: the CSV sync uses it to find the
    rows that left the file.
    """
    checker = AddressChecker()
    seen = seen if seen is not None else Seen()
    with open_csv(path, _MISSING) as fh:
        reader = csv.reader(fh)
        columns = header(path, reader, report, "email,name,...")
        _check_header(path, columns)
        width = len(columns)
        email_at = columns.index("email")
        for line, row in rows(reader, report, reader.line_num):
            problem = _row_problem(row, width, columns, email_at)
            if problem is None:
                values = [v.strip() for v in row]
                values += [""] * (width - len(values))
                try:
                    email = checker.check(values[email_at])
                except EmailNotValidError as exc:
                    problem = f"{values[email_at]!r} is not a valid email address ({exc}); correct or delete the row"
                else:
                    first = seen.add(email.lower(), line)
                    if first:
                        problem = f"{email} is a duplicate of line {first} (case is ignored); delete this row"
            if problem is not None:
                report.invalid_lines.append(line)
                report.add(line, problem)
                continue
            if len(row) < width:
                report.add(
                    line, f"{len(row)} fields, the header has {width}; the missing ones were taken as empty", False
                )
            record = {name: value for name, value in zip(columns, values, strict=True) if name}
            record["email"] = email
            status = record.get("status", "").lower() or SENDABLE
            if "status" in record:
                record["status"] = status
            name = record.get("name", "")
            if not record.get("first_name"):
                record["first_name"] = first_name_of(name)
            report.valid += 1
            report.statuses[status] += 1
            yield Subscriber(email=email, name=name, fields=record, line=line)


def _row_problem(row: list[str], width: int, columns: list[str], email_at: int) -> str | None:
    """The first thing wrong with a row that the address checks do not cover; None when fine."""
    problem = width_problem(row, width)
    if problem is not None:
        return problem
    if email_at >= len(row) or not row[email_at].strip():
        return "the email field is empty; fill it in or delete the row"
    for name, value in zip(columns, row, strict=False):
        if name in ("email", "name", "first_name") and CONTROL.search(value.strip()):
            what = "a line break (CR/LF)" if ("\r" in value or "\n" in value) else "a control character"
            return f"{name} contains {what}, which cannot go into a mail header; remove it"
        if name == "name" and len(value.strip()) > MAX_NAME:
            return f"name is {len(value.strip()):,} characters; shorten it to at most {MAX_NAME}"
        if name == "status" and value.strip().lower() not in ("", *STATUSES):
            return f"status {value.strip()!r} is not one of {', '.join(STATUSES)} (empty means active); correct it"
        if name == "tags":
            try:
                parse_tags(value)
            except ValueError as exc:
                return f"tags: {exc}"
    return None


def iter_rows(path: Path, *, report: ListReport | None = None, seen: Seen | None = None) -> Iterator[Subscriber]:
    """Every valid row whatever its CSV status (`subscribers check`, the CSV sync)."""
    yield from _read_rows(path, report if report is not None else ListReport(path), seen)


def iter_subscribers(
    path: Path, *, report: ListReport | None = None, suppressed: Container[str] = frozenset()
) -> Iterator[Subscriber]:
    """Valid active subscribers in file order, first of each address, minus `suppressed` (lower-case).

    Invalid rows are skipped and recorded in `report` when one is given.
    """
    report = report if report is not None else ListReport(path)
    for subscriber in _read_rows(path, report):
        if subscriber.status != SENDABLE:
            continue
        if subscriber.email.lower() in suppressed:
            report.suppressed += 1
            continue
        yield subscriber


def read_columns(path: Path) -> list[str]:
    """The CSV header (for templates' subscriber.<column>); empty when the file is missing or unreadable."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            first = fh.readline(MAX_LINE + 1)  # bounded: the header is one line
        return [c.strip() for c in next(csv.reader([first]), []) if c.strip()] if len(first) <= MAX_LINE else []
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _has_state(config: Config) -> bool:
    """Whether there is a state database to read (rendering or a test send never creates one)."""
    return config.state_is_url or config.path("state").exists()


def list_columns(config: Config) -> list[str]:
    """Every subscriber field templates may use: the CSV's columns and the custom fields in the database.

    A SQLite state file is only peeked at (no SQLAlchemy, no upgrade): `render` starts fast.
    """
    columns = read_columns(config.path("subscribers"))
    if _has_state(config):
        from ..state.peek import sqlite_field_names

        names = None if config.state_is_url else sqlite_field_names(config.path("state"))
        if names is None:
            from ..state.engine import engine_for
            from ..state.subscribers import field_names

            with contextlib.suppress(StateError):  # the database is down: the CSV's columns still render
                names = field_names(engine_for(config))
        columns += names or []
    return list(dict.fromkeys(columns))


def sample_subscriber(config: Config) -> Subscriber:
    """Who previews and sample .eml files are personalized for: configured, else the list's first row,
    else the first active subscriber in the database."""
    nl = config.newsletter
    if nl.sample_email:
        return Subscriber.of(nl.sample_email, nl.sample_name)
    try:
        first = next(iter_subscribers(config.path("subscribers")), None)
    except NewsletterError:
        first = None
    if first is None and _has_state(config):
        from ..state.engine import engine_for
        from ..state.subscribers import first_active

        try:
            row = first_active(engine_for(config))
        except StateError:
            row = None
        if row is not None:
            first = Subscriber(email=row.email, name=row.name, fields=row.fields, line=row.line)
    return first or Subscriber.of("reader@example.com", nl.sample_name)
