"""Small rules about subscriber data shared by every source: first names, tags, field names.

First names: the greeting says "Hi Ada," not "Hi Ada Lovelace,". When a source gives no first name,
it is the first word of the name, skipping a title ("Dr. Ada Lovelace" -> "Ada") and reading
"Lovelace, Ada" as surname first (but "Grace Hopper, PhD" as Grace). Tags are case-insensitive:
stored stripped, lower-cased, inner spaces collapsed; `;` separates them in a column.
"""

from __future__ import annotations

import re

_TITLES = {"dr", "mr", "mrs", "ms", "mx", "miss", "prof", "sir", "dame", "herr", "frau", "mme", "mlle", "m"}
_SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
MAX_TAG = 64
TAG_SEPARATOR = ";"


def first_name_of(name: str) -> str:
    """The first name within a full name; empty for an empty name."""
    name = name.strip()
    before, comma, after = name.partition(",")
    given = after.split()
    if comma and 1 <= len(given) <= 2 and given[0].lower().rstrip(".") not in _SUFFIXES:
        name = after  # "Lovelace, Ada": surname first
    else:
        name = before
    words = name.split()
    while len(words) > 1 and words[0].lower().rstrip(".") in _TITLES:
        words = words[1:]
    return words[0] if words else ""


def normalize_tag(tag: str) -> str:
    """One tag as stored; ValueError (the message says what is wrong) for one that cannot be."""
    if _CONTROL.search(tag):
        raise ValueError(f"tag {tag!r} contains a control character or line break; remove it")
    clean = _SPACES.sub(" ", tag).strip().lower()
    if TAG_SEPARATOR in clean:
        raise ValueError(f"tag {clean!r} contains {TAG_SEPARATOR!r}, which separates tags; give them one by one")
    if len(clean) > MAX_TAG:
        raise ValueError(f"tag {clean[:20]!r}... is longer than {MAX_TAG} characters; shorten it")
    return clean


def parse_tags(text: str, separator: str = TAG_SEPARATOR) -> tuple[str, ...]:
    """`news; Paid ;beta` -> ("news", "paid", "beta"): normalized, empty ones dropped, first of duplicates kept."""
    tags = (normalize_tag(t) for t in text.split(separator))
    return tuple(dict.fromkeys(t for t in tags if t))


def field_key(column: str) -> str:
    """A column name as a template field: `Phone Number` -> `phone_number`, usable as subscriber.phone_number."""
    key = _NOT_WORD.sub("_", column.strip().lower()).strip("_")
    if key and key[0].isdigit():
        key = f"f_{key}"
    return key
