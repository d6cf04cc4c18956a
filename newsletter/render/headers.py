"""Header fields written right at any length: no CR/LF from any input, folded within RFC 5322's limits.

Python's `email` folding writes a long non-ASCII subject as `Subject:` and an empty first line,
lets encoded words reach 76-77 characters (RFC 2047 allows 75) and does not fold `formataddr()`
output (a long display name made a 1,103-character `To:` line; RFC 5322 allows 998). This module
folds itself: ASCII words as they are, runs of words that need encoding as UTF-8 encoded words of
at most 75 characters, never split inside a character, lines kept under 78 characters where a
break is possible and always under 998.
"""

from __future__ import annotations

import base64
import re

from ..errors import HeaderInjectionError

SOFT_LIMIT = 78  # RFC 5322 2.1.1: SHOULD
HARD_LIMIT = 998  # MUST
_WORD_MAX = 75  # RFC 2047: an encoded word, delimiters included
_Q_SAFE = re.compile(rb"[A-Za-z0-9!*+\-/]")  # what RFC 2047 5(3) lets stand in a phrase's Q encoding
_LOOKS_ENCODED = re.compile(r"=\?.*\?=")


def check_header(value: str, what: str) -> str:
    """Refuse CR/LF (header injection) in anything that becomes a header; `what` names the source."""
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"{what}: contains a line break (CR/LF), which would forge mail headers; remove it")
    return value


def _plain(word: str) -> bool:
    """A word that may stand as it is: printable ASCII, not mistakable for an encoded word."""
    return word.isascii() and word.isprintable() and not _LOOKS_ENCODED.search(word)


def _q(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        char = bytes([byte])
        out.append("_" if char == b" " else char.decode() if _Q_SAFE.match(char) else f"={byte:02X}")
    return "".join(out)


def _b(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def encoded_words(text: str, room: int = _WORD_MAX) -> list[str]:
    """`text` as UTF-8 encoded words of at most 75 characters (the first at most `room`), cut between characters.

    Q encoding when the text is mostly ASCII (readable in raw headers), B otherwise (shorter).
    """
    ascii_share = sum(c.isascii() for c in text) / max(len(text), 1)
    kind, encode = ("q", _q) if ascii_share >= 0.7 else ("b", _b)
    frame = len(f"=?utf-8?{kind}??=")
    words: list[str] = []
    start = 0
    while start < len(text):
        limit = (room if not words else _WORD_MAX) - frame
        end = start + 1
        while end < len(text) and len(encode(text[start : end + 1])) <= limit:
            end += 1
        words.append(f"=?utf-8?{kind}?{encode(text[start:end])}?=")
        start = end
    return words


def _atoms(value: str) -> list[str]:
    """The value as atoms to lay out: plain words, and encoded words for the runs that need encoding.

    Spaces between two encoded words are not shown by a reader, so a run of words that need
    encoding is encoded together, spaces included.
    """
    atoms: list[str] = []
    run: list[str] = []
    for word in value.split(" "):
        if word and _plain(word):
            if run:
                atoms.extend(encoded_words(" ".join(run)))
                run = []
            atoms.append(word)
        elif word:
            run.append(word)
    if run:
        atoms.extend(encoded_words(" ".join(run)))
    return atoms


def fold(name: str, value: str, *, atoms: list[str] | None = None) -> bytes:
    """`Name: value\\r\\n`, folded at spaces between atoms: lines under 78 characters where possible."""
    check_header(value, name)
    line = f"{name}:"
    lines: list[str] = []
    for atom in atoms if atoms is not None else _atoms(value):
        if len(line) + 1 + len(atom) > SOFT_LIMIT and line.strip() not in (f"{name}:",):
            lines.append(line)
            line = ""
        line += " " + atom
    lines.append(line)
    if any(len(x) > HARD_LIMIT for x in lines):
        raise HeaderInjectionError(f"{name}: a word of {max(map(len, lines))} characters cannot fit in a header line")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def address(name: str, email: str) -> list[str]:
    """A `To:`/`From:` value as atoms: the display name (quoted, or B-encoded words) and `<email>`."""
    if not name:
        return [email]
    if name.isascii() and name.isprintable() and not _LOOKS_ENCODED.search(name):
        if re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+", name):
            return [*name.split(), f"<{email}>"]
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return [quoted, f"<{email}>"]
    frame = len("=?utf-8?b??=")
    words = []
    text = name
    while text:  # B encoding: safe anywhere in a phrase (and a name that looks encoded stays literal)
        cut = len(text)
        while len(_b(text[:cut])) > _WORD_MAX - frame:
            cut -= 1
        words.append(f"=?utf-8?b?{_b(text[:cut])}?=")
        text = text[cut:]
    return [*words, f"<{email}>"]


def fold_address(field: str, name: str, email: str) -> bytes:
    check_header(name, f"{field} name")
    check_header(email, f"{field} address")
    return fold(field, f"{name} <{email}>" if name else email, atoms=address(name, email))

