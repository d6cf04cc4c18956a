"""The subscriber list: a CSV streamed row by row (never all in memory), validated as it is read.

Every row is checked (address syntax with email-validator and no DNS, duplicates case-insensitively,
empty or extra fields, CR/LF in names, unknown statuses, non-UTF-8 bytes); problems go to a
`ListReport` that names line numbers. Invalid rows are skipped, never fatal, so one typo cannot
block a send; `newsletter subscribers check` prints the report and fails on errors.

The suppression list in the state database always wins over the CSV (the send applies it).
"""

from __future__ import annotations

import csv
import re
from array import array
from collections import Counter
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError

from ..config import Config
from ..errors import NewsletterError
from .addresses import AddressChecker, Seen

STATUSES = ("active", "unsubscribed", "bounced", "complained")
SENDABLE = "active"
MAX_NAME = 200  # characters of a display name: the To: header must stay readable (and within RFC 5322)
MAX_PROBLEMS_KEPT = 1000  # details kept for printing; every problem is still counted
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


def _open(path: Path):  # type: ignore[no-untyped-def]
    try:
        with path.open("rb") as raw:
            head = raw.read(4)
    except FileNotFoundError:
        raise NewsletterError(
            f"{path}: subscriber list not found; create it (first line: email,name,status,subscribed_at) "
            f"or set [paths] subscribers"
        ) from None
    except OSError as exc:
        raise NewsletterError(f"{path}: cannot read the subscriber list ({exc.strerror})") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NewsletterError(f"{path}:1: the file is UTF-16; save it as UTF-8 (in Excel: 'CSV UTF-8')")
    # surrogateescape: a stray non-UTF-8 byte marks its row instead of stopping the whole file.
    return path.open(newline="", encoding="utf-8", errors="surrogateescape")


def _bad_bytes(text: str) -> str:
    return " ".join(f"0x{ord(c) - 0xDC00:02X}" for c in _SURROGATE.findall(text)[:3])


def _header(path: Path, row: list[str] | None, report: ListReport) -> list[str]:
    if not row:
        raise NewsletterError(f"{path}:1: the file is empty; the first line must be the header email,name,...")
    if row[0].startswith("\ufeff"):
        row = [row[0][1:], *row[1:]]
        report.add(
            1, "the file starts with a byte-order mark (BOM), which was ignored; save as UTF-8 without BOM", False
        )
    columns = [c.strip() for c in row]
    if _SURROGATE.search("".join(columns)):
        raise NewsletterError(f"{path}:1: the header is not UTF-8 text ({_bad_bytes(''.join(columns))}); save as UTF-8")
    if "email" not in columns:
        lowered = [c.lower() for c in columns]
        hint = " (column names are lower-case)" if "email" in lowered else ""
        raise NewsletterError(f"{path}:1: no 'email' column in the header{hint}; the first line must be email,name,...")
    seen: set[str] = set()
    for number, name in enumerate(columns, 1):
        if name and name in seen:
            raise NewsletterError(f"{path}:1: column {name!r} appears twice in the header; rename or remove one")
        seen.add(name)
        if not name:
            report.add(1, f"column {number} has no name, so its values are ignored; name it or remove it", False)
    return columns


def _read_rows(path: Path, report: ListReport) -> Iterator[Subscriber]:
    """Every valid row (any status), in file order, first of each address only."""
    checker = AddressChecker()
    seen = Seen()
    with _open(path) as fh:
        reader = csv.reader(fh)
        try:
            columns = _header(path, next(reader, None), report)
        except csv.Error as exc:
            raise NewsletterError(f"{path}:1: the header is not valid CSV ({exc})") from None
        width = len(columns)
        email_at = columns.index("email")
        last_line = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                line = last_line + 1
                report.rows += 1
                report.invalid_lines.append(line)
                report.add(line, f"not valid CSV ({exc}); check quotes on this line and the ones before")
                if reader.line_num == last_line:
                    break
                last_line = reader.line_num
                continue
            line = last_line + 1
            last_line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            report.rows += 1
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
            report.valid += 1
            report.statuses[status] += 1
            yield Subscriber(email=email, name=record.get("name", ""), fields=record, line=line)


def _row_problem(row: list[str], width: int, columns: list[str], email_at: int) -> str | None:
    """The first thing wrong with a row that the address checks do not cover; None when fine."""
    if len(row) > width:
        extra = ", ".join(repr(v) for v in row[width:][:2])
        return (
            f"{len(row)} fields, the header has {width} (extra: {extra}); "
            f'put values containing commas in double quotes ("Lovelace, Ada") or add a column'
        )
    joined = "\x1f".join(row)
    if _SURROGATE.search(joined):
        return f"not UTF-8 text (bytes {_bad_bytes(joined)}); save the file as UTF-8 (in Excel: 'CSV UTF-8')"
    if email_at >= len(row) or not row[email_at].strip():
        return "the email field is empty; fill it in or delete the row"
    for name, value in zip(columns, row, strict=False):
        if name in ("email", "name") and _CONTROL.search(value.strip()):
            what = "a line break (CR/LF)" if ("\r" in value or "\n" in value) else "a control character"
            return f"{name} contains {what}, which cannot go into a mail header; remove it"
        if name == "name" and len(value.strip()) > MAX_NAME:
            return f"name is {len(value.strip()):,} characters; shorten it to at most {MAX_NAME}"
        if name == "status" and value.strip().lower() not in ("", *STATUSES):
            return f"status {value.strip()!r} is not one of {', '.join(STATUSES)} (empty means active); correct it"
    return None


def iter_rows(path: Path, *, report: ListReport | None = None) -> Iterator[Subscriber]:
    """Every valid row whatever its CSV status (for list, stats, export)."""
    yield from _read_rows(path, report if report is not None else ListReport(path))


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
    """The CSV header (for templates' subscriber.<column>); empty when the file is missing."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            return [c.strip() for c in next(csv.reader(fh), []) if c.strip()]
    except (FileNotFoundError, UnicodeDecodeError, csv.Error):
        return []


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
