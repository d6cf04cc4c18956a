"""RFC 5965 abuse feedback reports (ARF): `multipart/report; report-type=feedback-report`.

Feedback loops (Yahoo/AOL, Outlook.com's JMRP, Comcast, Fastmail...) send one when a recipient
presses "this is spam". The second part holds the fields (Feedback-Type, Original-Mail-From,
Original-Rcpt-To, Arrival-Date); the third the reported message or its headers, whose Return-Path
keeps our VERP address even when the provider redacts the recipient. `abuse` and `fraud` are
complaints; `not-spam`, `virus`, `auth-failure` and the rest are not about the subscriber.
"""

from __future__ import annotations

from email.message import Message
from email.parser import HeaderParser

from ..state.statuses import BounceKind
from .message import clean
from .report import Failure, Parts, Report, address_in, original_in, when_of

COMPLAINTS = ("abuse", "fraud")


def is_arf(msg: Message, parts: Parts) -> bool:
    if parts[0][1] == "multipart/report" and str(msg.get_param("report-type", "")).lower() == "feedback-report":
        return True
    return any(kind == "message/feedback-report" for _part, kind in parts)


def _fields(parts: Parts) -> Message | None:
    for part, kind in parts:
        if kind != "message/feedback-report":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        if isinstance(payload, str):
            return HeaderParser().parsestr(payload, headersonly=True)
    return None


def read_arf(msg: Message, parts: Parts) -> Report:
    """A complaint per reported recipient (one with no address when the provider redacted it)."""
    original = original_in(parts)
    report = Report("arf", original=original)
    fields = _fields(parts)
    if fields is None:
        report.problem = "a feedback report without its message/feedback-report part (truncated or malformed)"
        return report
    feedback = clean(fields.get("feedback-type", ""), 40).lower()
    if feedback not in COMPLAINTS:
        report.ignored = f"a feedback report of type {feedback or 'none'!r}, not a complaint"
        return report
    report.envelope = [clean(fields.get("original-mail-from", ""), 300)]
    if original is not None:
        report.envelope.append(original.return_path)
    when = when_of(fields.get("arrival-date") or fields.get("received-date")) or when_of(msg.get("date"))
    agent = clean(fields.get("user-agent", ""), 80)
    detail = f"feedback loop {agent}".strip() if agent else "feedback loop"
    addresses = [address_in(value) for value in fields.get_all("original-rcpt-to", [])]
    for address in dict.fromkeys(a for a in addresses if a) or [""]:
        report.failures.append(Failure(address, BounceKind.COMPLAINT, feedback, detail, when))
    return report
