"""Which kind of message this is, most specific first: ARF, DSN, SES, a non-standard bounce, an auto-reply.

The standards come first because they say exactly what happened; flufl.bounce's heuristics run only
on what no standard describes; the auto-reply check comes after them, since bounces carry
`Auto-Submitted` too; whatever is left is not a report and is left alone.
"""

from __future__ import annotations

from email.message import Message

from .arf import is_arf, read_arf
from .autoreply import auto_reply
from .dsn import has_dsn, read_dsn
from .message import clean
from .nonstandard import read_nonstandard
from .report import Report, parts_of
from .ses import read_ses


def classify(msg: Message) -> Report:
    parts = parts_of(msg)
    if is_arf(msg, parts):
        return read_arf(msg, parts)
    if has_dsn(parts):
        return read_dsn(msg, parts)
    found = read_ses(parts)
    if found is not None:
        return found
    try:
        found = read_nonstandard(msg, parts)
    except Exception as exc:  # a detector tripped over hostile input: this message only
        return Report("heuristic", problem=f"a bounce detector failed on it ({clean(exc, 120)})")
    if found is not None:
        return found
    reason = auto_reply(msg)
    if reason is not None:
        return Report("auto-reply", ignored=reason)
    return Report("unknown", problem="not a bounce or complaint report (no format known to newsletter)")
