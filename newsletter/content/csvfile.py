"""Reading a CSV of people, streamed: the file checks every list and import shares.

UTF-16 is refused (Excel's "Unicode text"), a stray non-UTF-8 byte marks its row only (the file is
read with surrogateescape), a byte-order mark is a warning, a broken quote is one bad line and the
line numbers stay right across quoted line breaks. Problems go to the caller's `ListReport`.

A stray opening quote is different: Python's csv module reads on to the next quote, or to the end
of the file, and every row in between becomes part of one value, silently. A record that spans
several physical lines whose value holds lines that look like rows of their own (an address and a
comma in them) is such a quote: it is reported with its line and the count, and marks the whole file unreadable
(`ListReport.unreadable`), so a sync removes nobody and a send refuses. A real multi-line value (a
postal address in quotes) holds no such line and stays one field.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..errors import NewsletterError

if TYPE_CHECKING:
    from .subscribers import ListReport

SURROGATE = re.compile(r"[\udc80-\udcff]")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_FIELD = 64 * 1024  # characters in one field
MAX_LINE = 1024 * 1024  # characters on one line of the file: what is read at once, whatever the file holds
# What a line over MAX_LINE is read as: a lone high surrogate, which no decoded file contains.
_TOO_LONG = "\ud800"


class _BoundedText(io.TextIOWrapper):
    """The file's lines for csv.reader, each at most MAX_LINE characters: a gigabyte of commas on one
    line is skipped in bounded memory (and reported by `rows`) instead of becoming a billion fields."""

    def __next__(self) -> str:  # type: ignore[override]
        line = self.readline(MAX_LINE + 1)
        if not line:
            raise StopIteration
        if len(line) <= MAX_LINE:
            return line
        while line and not line.endswith(("\n", "\r")):  # the rest of this line, 64 KB at a time
            line = self.readline(65536)
        return _TOO_LONG + "\n"


def bad_bytes(text: str) -> str:
    """The first non-UTF-8 bytes of a text read with surrogateescape, as `0xE9 0xFC`."""
    return " ".join(f"0x{ord(c) - 0xDC00:02X}" for c in SURROGATE.findall(text)[:3])


def open_csv(path: Path, missing: str) -> TextIO:
    """The file as text; `missing` is what to say when it does not exist ("subscriber list not found; ...")."""
    try:
        with path.open("rb") as raw:
            head = raw.read(4)
    except FileNotFoundError:
        raise NewsletterError(f"{path}: {missing}") from None
    except OSError as exc:
        raise NewsletterError(f"{path}: cannot read the file ({exc.strerror})") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NewsletterError(f"{path}:1: the file is UTF-16; save it as UTF-8 (in Excel: 'CSV UTF-8')")
    # surrogateescape: a stray non-UTF-8 byte marks its row instead of stopping the whole file.
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise NewsletterError(f"{path}: cannot read the file ({exc.strerror})") from None
    return _BoundedText(raw, newline="", encoding="utf-8", errors="surrogateescape")


def header(path: Path, reader: Iterator[list[str]], report: ListReport, first_line: str) -> list[str]:
    """The header's column names (stripped); `first_line` says what the header should look like."""
    try:
        row = next(reader, None)
    except csv.Error as exc:
        raise NewsletterError(f"{path}:1: the header is not valid CSV ({exc})") from None
    if not row:
        raise NewsletterError(f"{path}:1: the file is empty; the first line must be the header {first_line}")
    if row[0].startswith("\ufeff"):
        row = [row[0][1:], *row[1:]]
        report.add(
            1, "the file starts with a byte-order mark (BOM), which was ignored; save as UTF-8 without BOM", False
        )
    columns = [c.strip() for c in row]
    if SURROGATE.search("".join(columns)):
        raise NewsletterError(f"{path}:1: the header is not UTF-8 text ({bad_bytes(''.join(columns))}); save as UTF-8")
    seen: set[str] = set()
    for number, name in enumerate(columns, 1):
        if name and name in seen:
            raise NewsletterError(f"{path}:1: column {name!r} appears twice in the header; rename or remove one")
        seen.add(name)
        if not name:
            report.add(1, f"column {number} has no name, so its values are ignored; name it or remove it", False)
    return columns


def rows(reader: Iterator[list[str]], report: ListReport, start_line: int) -> Iterator[tuple[int, list[str]]]:
    """(line, fields) of every non-blank data row; unparseable lines are recorded as invalid and skipped.

    `reader` is a csv.reader whose header was read; `start_line` its line_num then.
    """
    last_line = start_line
    line_num = getattr(reader, "line_num", 0)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            line = last_line + 1
            report.rows += 1
            report.invalid_lines.append(line)
            if "field larger than field limit" in str(exc):
                limit = csv.field_size_limit()
                report.add(line, f"a field of more than {limit:,} characters (an unclosed quote?); {_FIELD_FIX}")
                if getattr(reader, "line_num", last_line) - last_line > 1:  # a quote ran on over lines: rows lost
                    report.unreadable = report.unreadable or (
                        f"{report.path}:{line}: a quote opened on this line runs on past {limit:,} characters, "
                        f"over the rows after it; fix the quote"
                    )
            else:
                report.add(line, f"not valid CSV ({exc}); check quotes on this line and the ones before")
            if getattr(reader, "line_num", line_num) == last_line:
                return
            last_line = getattr(reader, "line_num", last_line)
            continue
        line = last_line + 1
        last_line = getattr(reader, "line_num", last_line)
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line
        report.rows += 1
        swallowed = _row_like_lines(row) if last_line > line else 0
        if swallowed:
            message = (
                f"a quote opened on this line runs on to line {last_line}: the {swallowed:,} lines in between look "
                f"like rows of their own and would be lost in one value; fix the quote (a quote inside a value is "
                f'doubled, in a quoted value: "Ada ""The Countess"" Lovelace")'
            )
            report.invalid_lines.append(line)
            report.add(line, message)
            report.unreadable = report.unreadable or f"{report.path}:{line}: {message}"
            continue
        too_long = _size_problem(row)
        if too_long is not None:
            report.invalid_lines.append(line)
            report.add(line, too_long)
            continue
        yield line, row


_FIELD_FIX = f"at most {MAX_FIELD:,} per field: check the quotes, or shorten the value"


def _size_problem(row: list[str]) -> str | None:
    """A line over MAX_LINE characters, or a field over MAX_FIELD: refused before any other check."""
    if row[0][:1] == _TOO_LONG:
        return f"more than {MAX_LINE:,} characters on one line; a row is an address and a few fields: check the file"
    longest = max(map(len, row))
    if longest > MAX_FIELD:
        return f"a field of {longest:,} characters; {_FIELD_FIX}"
    return None


def _row_like_lines(row: list[str]) -> int:
    """Lines inside the row's values (after each value's first) that hold an address and a comma: rows a quote
    swallowed. (A value with a line break and an address alone, `"Eve\r\nBcc: x@example.com"`, is one bad row.)"""
    return sum(
        1
        for value in row
        if "\n" in value or "\r" in value
        for piece in value.splitlines()[1:]
        if "@" in piece and "," in piece
    )


def width_problem(row: list[str], width: int) -> str | None:
    """Too many fields, or bytes that are not UTF-8: the row cannot be read at all."""
    if len(row) > width:
        extra = ", ".join(repr(v) for v in row[width:][:2])
        return (
            f"{len(row)} fields, the header has {width} (extra: {extra}); "
            f'put values containing commas in double quotes ("Lovelace, Ada") or add a column'
        )
    joined = "\x1f".join(row)
    if SURROGATE.search(joined):
        return f"not UTF-8 text (bytes {bad_bytes(joined)}); save the file as UTF-8 (in Excel: 'CSV UTF-8')"
    return None


def data_lines(path: Path) -> int:
    """About how many rows a CSV has (its lines but the header), from a byte count: 50 ms for 64 MB."""
    try:
        with path.open("rb") as fh:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
    except OSError:
        return 0
    return max(lines - 1, 0)
