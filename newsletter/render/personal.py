"""Per-subscriber fields as placeholders that survive Markdown, premailer and quoted-printable.

The issue is rendered once with markers such as `__NL5f3a9c01_3__` where a template says
`{{ subscriber.name | default("there") }}` or `{{ unsubscribe_url }}`; each message then only
substitutes values into prepared text. The markers are plain ASCII word characters, so premailer
does not URL-encode them and quoted-printable leaves them intact. A random nonce
per render keeps an article that happens to contain marker-like text from being filled.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, NoReturn, TypeVar

from jinja2 import Undefined, UndefinedError, pass_context
from jinja2.runtime import Context

BASE_COLUMNS = ("email", "name", "first_name", "status", "subscribed_at")
T = TypeVar("T")


@dataclass(frozen=True)
class Field:
    """One per-subscriber value: a subscriber column, or the unsubscribe URL."""

    source: str  # "subscriber" | "unsubscribe_url"
    key: str = ""
    fallback: str = ""


class Placeholder(str):
    """A marker string that knows its field; safe in HTML (word characters only)."""

    field_index: int

    def __new__(cls, index: int, nonce: str) -> Placeholder:
        self = super().__new__(cls, f"__NL{nonce}_{index}__")
        self.field_index = index
        return self

    def __html__(self) -> str:
        return str(self)

    def _refuse(self, *_args: object, **_kwargs: object) -> NoReturn:
        raise UndefinedError(
            "a per-subscriber value (subscriber.<column> or unsubscribe_url) is filled in per subscriber after "
            "rendering: insert it as is, or with `| default(...)`; it cannot be tested, measured or changed by "
            "other filters"
        )

    # Anything that would look at the value at render time (where it is not known yet) refuses
    # loudly instead of acting on the marker: `{% if subscriber.name %}`, `| upper`, `| truncate`...
    __bool__ = __len__ = __getitem__ = __iter__ = __contains__ = __mod__ = _refuse
    upper = lower = title = capitalize = swapcase = casefold = replace = strip = lstrip = rstrip = _refuse
    split = rsplit = splitlines = startswith = endswith = format = center = ljust = rjust = zfill = _refuse


@dataclass
class FieldTable:
    """The fields one rendering used, in marker order."""

    fields: list[Field] = field(default_factory=list)
    nonce: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def marker(self) -> re.Pattern[str]:
        """Matches this render's markers; group 1 is the field index."""
        return re.compile(rf"__NL{self.nonce}_(\d+)__")

    def placeholder(self, f: Field) -> Placeholder:
        if f not in self.fields:
            self.fields.append(f)
        return Placeholder(self.fields.index(f), self.nonce)

    def altered_marker(self, text: str) -> bool:
        """Whether a filter changed a marker (`| title`, `| truncate`...): it could not be filled.

        Only `default` understands per-subscriber values; anything else would leave a raw marker
        in every subscriber's email.
        """
        return len(re.findall(rf"(?i)__NL{self.nonce}_", text)) != len(self.marker.findall(text))

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


class Prepared(Generic[T]):
    """A text split at its markers once, then filled many times: the one split-and-fill of the package.

    `piece` prepares each static stretch once (as is for the preview's HTML, quoted-printable bytes
    for a message); `value` prepares each per-subscriber value when filled. With `cache_values`,
    values that repeat (fallbacks, shared columns) are prepared once.
    """

    def __init__(
        self,
        text: str,
        marker: re.Pattern[str],
        *,
        piece: Callable[[str], T],
        value: Callable[[str], T],
        cache_values: bool = False,
    ) -> None:
        parts = marker.split(text)
        self.static = [piece(s) for s in parts[0::2]]
        self.indexes = [int(i) for i in parts[1::2]]
        self._value = value
        self._cache: dict[str, T] | None = {} if cache_values else None

    def _prepared(self, value: str) -> T:
        cache = self._cache
        if cache is None:
            return self._value(value)
        found = cache.get(value)
        if found is None:
            found = self._value(value)
            if len(cache) < 4096:  # fallbacks and shared values repeat; addresses do not
                cache[value] = found
        return found

    def fill(self, values: list[str]) -> list[T]:
        out = [self.static[0]]
        for index, static in zip(self.indexes, self.static[1:], strict=True):
            out.append(self._prepared(values[index]))
            out.append(static)
        return out


def escape_html(value: str) -> str:
    return html.escape(value, quote=True)


def fill_text(text: str, marker: re.Pattern[str], values: list[str], *, escape: bool) -> str:
    """One fill of `text` (the preview, the web archive, sample files): values HTML-escaped when `escape`."""
    prepared = Prepared(text, marker, piece=str, value=escape_html if escape else str)
    return "".join(prepared.fill(values))
