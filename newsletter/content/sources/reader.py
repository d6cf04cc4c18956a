"""Reading an export file row by row: its format, the column plan (with --map), each row validated.

Streamed like the list (`content.subscribers`): one row at a time, duplicates found with 8-byte
fingerprints, every problem recorded in a `ListReport` with its line. A row that cannot be taken
is reported and skipped; the rest of the file still imports.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from email_validator import EmailNotValidError

from ...errors import NewsletterError
from ..addresses import AddressChecker, Seen
from ..csvfile import CONTROL, header, open_csv, rows, width_problem
from ..listsync import parse_when
from ..names import field_key, first_name_of, normalize_tag
from ..subscribers import ListReport
from .formats import FORMATS, ROLES, Format, Verdict, detect

ALIASES = {"subscribed_at": "consent_at", "skip": "drop", "ignore": "drop", "-": "drop"}


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One row as the list will take it: `verdict` says active, suppress (with a reason) or skip (why)."""

    line: int
    email: str
    name: str
    first_name: str
    fields: dict[str, str]  # custom fields (template values), by field key
    tags: tuple[str, ...]
    verdict: Verdict
    consent_at: dt.datetime | None


def parse_map(specs: Sequence[str]) -> dict[str, str]:
    """`--map COLUMN=FIELD` options -> {column: role or custom field key}."""
    mapping: dict[str, str] = {}
    for spec in specs:
        column, eq, target = spec.partition("=")
        column, target = column.strip(), target.strip()
        if not eq or not column or not target:
            raise NewsletterError(
                f"--map {spec!r}: write COLUMN=FIELD, e.g. --map 'E-Mail=email' or --map 'Vorname=first_name'"
            )
        target = ALIASES.get(target.lower(), target)
        role = target.lower() if target.lower() in ROLES else field_key(target)
        if not role:
            raise NewsletterError(f"--map {spec!r}: {target!r} is not a field name; use letters, digits and _")
        mapping[column.lower()] = role
    return mapping


def split_tags(text: str, separator: str) -> list[str]:
    """Tags as services write them: `a;b`, `"a","b"` (Mailchimp), `a, b`, or a JSON list."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            found = json.loads(text)
        except ValueError:
            found = None
        if isinstance(found, list):
            return [str(t) for t in found]
    return next(csv.reader([text], delimiter=separator, skipinitialspace=True), [])


class ExportFile:
    """An open export: `format`, the column plan, and `rows()`; close it (or use `with`)."""

    def __init__(self, path: Path, format_name: str, mapping: dict[str, str], report: ListReport) -> None:
        self.path = path
        self.report = report
        self.fh: TextIO = open_csv(path, "file not found; give the path of the exported CSV file")
        try:
            self.reader = csv.reader(self.fh)
            self.columns = header(path, self.reader, report, "with an email column")
            self.format = self._format(format_name, mapping)
            self.plan = self._plan(mapping)
            # Per row, custom fields are copied as they are; the other roles need a look (dropped: neither).
            self.custom = [(i, role[6:]) for i, role in enumerate(self.plan) if role.startswith("field:")]
            self.roles = [
                (i, role, self.columns[i]) for i, role in enumerate(self.plan) if role != "drop" and ":" not in role
            ]
        except BaseException:
            self.fh.close()
            raise

    def __enter__(self) -> ExportFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def _format(self, name: str, mapping: dict[str, str]) -> Format:
        lowered = {c.lower() for c in self.columns}
        unknown = [c for c in mapping if c not in lowered]
        if unknown:
            raise NewsletterError(
                f"{self.path}:1: --map names the column {unknown[0]!r}, which is not in the header "
                f"(columns: {', '.join(c for c in self.columns if c)})"
            )
        if name != "auto":
            return FORMATS[name]
        found = detect(lowered)
        if found is None and "email" in mapping.values():
            return FORMATS["csv"]
        if found is None:
            raise NewsletterError(
                f"{self.path}:1: not a known export (mailchimp, substack, buttondown, listmonk) and no 'email' column; "
                f"name the address column with --map COLUMN=email (columns: {', '.join(c for c in self.columns if c)})"
            )
        return found

    def _plan(self, mapping: dict[str, str]) -> list[str]:
        """Per column: its role, or `field:<key>` for a custom field, or `drop`."""
        plan = []
        for column in self.columns:
            lowered = column.lower()
            role = mapping.get(lowered) or self.format.columns.get(lowered)
            if role is None:
                key = field_key(column)
                role = f"field:{key}" if key else "drop"
            elif role not in ROLES:
                role = f"field:{role}"
            plan.append(role)
        if "email" not in plan:
            raise NewsletterError(
                f"{self.path}:1: no email column for the {self.format.name} format; "
                f"name it with --map COLUMN=email (columns: {', '.join(c for c in self.columns if c)})"
            )
        if plan.count("email") > 1:
            raise NewsletterError(f"{self.path}:1: more than one column is mapped to email; keep one")
        return plan

    def rows(self) -> Iterator[ImportRow]:
        checker = AddressChecker()
        seen = Seen()
        width = len(self.columns)
        file_verdict = self.format.file_status({c.lower() for c in self.columns})
        for line, row in rows(self.reader, self.report, self.reader.line_num):
            problem = width_problem(row, width)
            found = None if problem else self._row(line, row + [""] * (width - len(row)), file_verdict, checker)
            if isinstance(found, str):
                problem = found
            if found is None or isinstance(found, str):
                self.report.invalid_lines.append(line)
                self.report.add(line, problem or "unreadable row")
                continue
            first = seen.add(found.email.lower(), line)
            if first:
                self.report.invalid_lines.append(line)
                self.report.add(
                    line, f"{found.email} is a duplicate of line {first} (case is ignored); only the first is taken"
                )
                continue
            self.report.valid += 1
            yield found

    def _row(self, line: int, row: list[str], file_verdict: Verdict | None, checker: AddressChecker) -> ImportRow | str:
        """The row as an ImportRow, or what is wrong with it."""
        values: dict[str, str] = {}
        fields = {key: value for index, key in self.custom if (value := row[index].strip())}
        consent_at: dt.datetime | None = None
        tags: list[str] = []
        for index, role, column in self.roles:
            value = row[index].strip()
            if role == "attributes":
                if value:
                    try:
                        attributes = json.loads(value)
                        if not isinstance(attributes, dict):
                            raise ValueError
                    except ValueError:
                        self.report.add(line, f"{column} is not a JSON object; ignored", False)
                        continue
                    for key, item in attributes.items():
                        text = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
                        if field_key(key) and text != "":
                            fields.setdefault(field_key(key), text)
            elif role == "tags":
                tags += split_tags(value, self.format.tag_separator)
            elif role == "consent_at":  # the last one given wins: Mailchimp's CONFIRM_TIME over OPTIN_TIME
                consent_at = parse_when(value) or consent_at
            else:
                values.setdefault(role, value)
        email = values.get("email", "")
        if not email:
            return "the email field is empty; fill it in or delete the row"
        for role in ("email", "name", "first_name", "last_name"):
            if CONTROL.search(values.get(role, "")):
                return f"{role} contains a line break or control character, which cannot go into a mail header"
        try:
            email = checker.check(email)
        except EmailNotValidError as exc:
            return f"{email!r} is not a valid email address ({exc}); correct or delete the row"
        verdict = file_verdict
        if verdict is None:
            verdict = self.format.verdict(values.get("status", ""))
            if verdict is None:
                known = ", ".join(repr(v) for v in self.format.statuses if v)
                return f"{self.format.what} {values['status']!r} is not one of {known}; correct it or map the column"
        try:
            clean_tags = tuple(dict.fromkeys(t for t in (normalize_tag(t) for t in tags) if t))
        except ValueError as exc:
            return f"tags: {exc}"
        first = values.get("first_name") or fields.pop("first_name", "")
        last = values.get("last_name") or fields.pop("last_name", "")
        name = values.get("name") or fields.pop("name", "") or " ".join(p for p in (first, last) if p)
        if CONTROL.search(name + first):
            return "name contains a line break or control character, which cannot go into a mail header"
        if last:
            fields.setdefault("last_name", last)
        return ImportRow(line, email, name, first or first_name_of(name), fields, clean_tags, verdict, consent_at)
