"""Bounces in no standard format (old Exchange NDRs, qmail, Exim without DSNs, Yahoo's, ...) via flufl.bounce.

flufl.bounce is GNU Mailman's bounce detector set, maintained for two decades against real bounces;
it returns the permanent failures' addresses, and separately the addresses of delay warnings
(which, as in a DSN, say that nothing failed yet). The status code, when the text has one, is
read for the hard/soft rule and the record.
"""

from __future__ import annotations

import logging
from email.message import Message

from flufl.bounce import all_failures

from ..state.statuses import BounceKind
from .message import clean
from .report import Failure, Parts, Report, kind_of, status_in, text_of, when_of

# flufl.bounce logs every detector it runs, and a detector's exception with its traceback: neither
# belongs on our output (an exception is reported as the message's one-line reason instead).
_log = logging.getLogger("flufl.bounce")
_log.addHandler(logging.NullHandler())
_log.propagate = False


def _decoded(address: bytes) -> str:
    text = address.decode("ascii", "replace").strip().strip("<>").lower()
    return text if "@" in text and len(text) <= 254 and not any(c.isspace() for c in text) else ""


def _diagnostic(text: str, status: str) -> str:
    for line in text.splitlines():
        if status and status in line:
            return clean(line, 300)
    return ""


def read_nonstandard(msg: Message, parts: Parts) -> Report | None:
    """The failures flufl.bounce finds; None when it finds none."""
    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return None
    text = text_of(parts)
    status = status_in(text)
    diagnostic = _diagnostic(text, status)
    when = when_of(msg.get("date"))
    report = Report("heuristic")
    for raw in sorted(permanent):
        address = _decoded(raw)
        if address:
            kind = kind_of(status, BounceKind.HARD)
            report.failures.append(Failure(address, kind, status or "5.0.0", diagnostic, when))
    if not report.failures:
        if not any(_decoded(raw) for raw in temporary):
            return None
        report.ignored = "a delay warning: the relay is still trying, nothing failed yet"
    return report
