"""Amazon SES bounce and complaint notifications delivered by email (an SNS topic's email subscription).

The body is SES's JSON (`"notificationType": "Bounce"`), bare ("Email" protocol, followed by SNS's
footer) or inside SNS's envelope ("Email-JSON": `"Type": "Notification", "Message": "<json>"`).
`mail.source` is the envelope sender, our VERP address. Permanent bounces are hard, Transient and
Undetermined soft (unless the status code says otherwise, by the same rule as every DSN).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from ..state.statuses import BounceKind
from .message import clean
from .report import Failure, Original, Parts, Report, address_in, kind_of, status_in, text_of

_MAX_JSON = 200_000


def _notification(parts: Parts) -> dict[str, Any] | None:
    text = text_of(parts, _MAX_JSON)
    if '"notificationType"' not in text and '"eventType"' not in text and '\\"notificationType\\"' not in text:
        return None
    start = text.find("{")
    if start < 0:
        return None
    try:
        found, _end = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    if isinstance(found, dict) and found.get("Type") == "Notification" and isinstance(found.get("Message"), str):
        try:
            found = json.loads(found["Message"])
        except ValueError:
            return None
    if not isinstance(found, dict) or not isinstance(found.get("notificationType") or found.get("eventType"), str):
        return None
    return found


def _when(value: object) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def read_ses(parts: Parts) -> Report | None:
    """The report of an SES notification email; None when the message is not one."""
    note = _notification(parts)
    if note is None:
        return None
    kind = str(note.get("notificationType") or note.get("eventType"))
    mail = _dict(note.get("mail"))
    common = _dict(mail.get("commonHeaders"))
    report = Report("ses", envelope=[clean(mail.get("source", ""), 300)])
    report.original = Original(message_id=clean(common.get("messageId", ""), 300))
    if kind == "Bounce":
        bounce = _dict(note.get("bounce"))
        default = BounceKind.HARD if bounce.get("bounceType") == "Permanent" else BounceKind.SOFT
        when = _when(bounce.get("timestamp"))
        for item in _dicts(bounce.get("bouncedRecipients")):
            diagnostic = clean(item.get("diagnosticCode", "") or bounce.get("bounceSubType", ""), 300)
            diagnostic = diagnostic.partition(";")[2].strip() if diagnostic.lower().startswith("smtp;") else diagnostic
            status = status_in(clean(item.get("status", ""), 20)) or status_in(diagnostic)
            status = status or ("5.0.0" if default == BounceKind.HARD else "4.0.0")
            address = address_in(item.get("emailAddress", ""))
            report.failures.append(Failure(address, kind_of(status, default), status, diagnostic, when))
    elif kind == "Complaint":
        complaint = _dict(note.get("complaint"))
        feedback = clean(complaint.get("complaintFeedbackType", "") or "abuse", 40).lower()
        if feedback == "not-spam":
            report.ignored = "an SES complaint notification of type 'not-spam', not a complaint"
            return report
        when = _when(complaint.get("timestamp"))
        for item in _dicts(complaint.get("complainedRecipients")):
            address = address_in(item.get("emailAddress", ""))
            report.failures.append(Failure(address, BounceKind.COMPLAINT, feedback, "Amazon SES feedback", when))
    else:
        report.ignored = f"an SES {clean(kind, 40)} notification, not a bounce or complaint"
        return report
    if not report.failures:
        report.problem = f"an SES {kind} notification that names no recipient"
    return report
