"""Per-subscriber fields as placeholders that survive Markdown, premailer and quoted-printable.

The issue is rendered once with markers such as `__NL_3__` where a template says
`{{ subscriber.name | default("there") }}` or `{{ unsubscribe_url }}`; each message then only
substitutes values into prepared text. The markers are plain ASCII word characters, so premailer
does not URL-encode them (see DESIGN.md) and quoted-printable leaves them intact.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from jinja2 import Undefined, UndefinedError, pass_context
from jinja2.runtime import Context

MARKER = re.compile(r"__NL_(\d+)__")
BASE_COLUMNS = ("email", "name", "status", "subscribed_at")


@dataclass(frozen=True)
class Field:
    """One per-subscriber value: a subscriber column, or the unsubscribe URL."""

    source: str  # "subscriber" | "unsubscribe_url"
    key: str = ""
    fallback: str = ""


class Placeholder(str):
    """A marker string that knows its field; safe in HTML (word characters only)."""

    field_index: int

    def __new__(cls, index: int) -> Placeholder:
        self = super().__new__(cls, f"__NL_{index}__")
        self.field_index = index
        return self

    def __html__(self) -> str:
        return str(self)


@dataclass
class FieldTable:
    """The fields one rendering used, in marker order."""

    fields: list[Field] = field(default_factory=list)

    def placeholder(self, f: Field) -> Placeholder:
        if f not in self.fields:
            self.fields.append(f)
        return Placeholder(self.fields.index(f))

    def with_fallback(self, p: Placeholder, fallback: str) -> Placeholder:
        old = self.fields[p.field_index]
        return self.placeholder(Field(old.source, old.key, fallback))


class SubscriberProxy:
    """`subscriber` in templates during the one-time render: each column becomes a marker.

    An unknown column raises, so a template typo fails at render time with its line number
    instead of sending empty greetings to the whole list.
    """

    def __init__(self, table: FieldTable, columns: Iterable[str]) -> None:
        self._table = table
        self._columns = tuple(dict.fromkeys([*BASE_COLUMNS, *columns]))

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._columns:
            # Not AttributeError: Jinja would turn that into a vaguer "undefined" message.
            raise UndefinedError(f"subscriber has no column {name!r} (columns: {', '.join(self._columns)})")
        return self._table.placeholder(Field("subscriber", name))

    __getitem__ = __getattr__


TABLE_KEY = "_personal_fields"  # where the render puts its FieldTable in the template context


@pass_context
def default_filter(context: Context, value: object, default_value: object = "", boolean: bool = False) -> object:
    """Jinja's `default`, extended so `subscriber.name | default("there")` works per subscriber.

    The FieldTable comes from the context, not the environment, so one environment (and its
    compiled templates) serves every render.
    """
    if isinstance(value, Placeholder):
        return context[TABLE_KEY].with_fallback(value, str(default_value))
    if isinstance(value, Undefined) or (boolean and not value):
        return default_value
    return value


def field_values(fields: list[Field], subscriber: Mapping[str, str], unsubscribe_url: str) -> list[str]:
    """Raw (unescaped) values of each field for one subscriber."""
    values = []
    for f in fields:
        if f.source == "unsubscribe_url":
            value = unsubscribe_url
        else:
            value = (subscriber.get(f.key) or "").strip()
        values.append(value or f.fallback)
    return values


class Filler:
    """A text split at its markers once, then filled many times (cheap per subscriber)."""

    def __init__(self, text: str, escape: bool) -> None:
        parts = MARKER.split(text)
        self.static = parts[0::2]
        self.indexes = [int(i) for i in parts[1::2]]
        self.escape = escape

    def fill(self, values: list[str]) -> str:
        out = [self.static[0]]
        for index, static in zip(self.indexes, self.static[1:], strict=True):
            value = values[index]
            out.append(html.escape(value, quote=True) if self.escape else value)
            out.append(static)
        return "".join(out)
