"""RFC 3464 delivery status notifications: `multipart/report; report-type=delivery-status`.

Postfix, Exim (with DSNs on), Exchange, Gmail, Outlook.com and Amazon SES's forwarded bounces all
write one. The stdlib parser already splits the `message/delivery-status` part into header blocks:
the first about the message (Arrival-Date), one per recipient (Final-Recipient,
Original-Recipient, Action, Status, Diagnostic-Code). Only `Action: failed` counts; `delayed` is a
warning that the relay still tries, and `delivered`, `relayed`, `expanded` are success notices.
"""

from __future__ import annotations

from email.message import Message

from ..state.statuses import BounceKind
from .message import clean
from .report import Failure, Parts, Report, address_in, kind_of, original_in, status_in, when_of


def _diagnostic(block: Message) -> str:
    text = clean(block.get("diagnostic-code", ""), 300)
    kind, semi, rest = text.partition(";")
    return rest.strip() if semi and len(kind) < 12 else text


def _recipient_blocks(parts: Parts) -> tuple[list[Message], Message | None]:
    """The per-recipient blocks of every delivery-status part, and the first per-message block."""
    blocks: list[Message] = []
    first: Message | None = None
    for part, kind in parts:
        if kind != "message/delivery-status":
            continue
        payload = part.get_payload()
        if not isinstance(payload, list):
            continue
        for block in payload:
            if not isinstance(block, Message):
                continue
            if block.get("final-recipient") or block.get("original-recipient"):
                blocks.append(block)
            elif first is None:
                first = block
    return blocks, first


def has_dsn(parts: Parts) -> bool:
    return any(kind == "message/delivery-status" for _part, kind in parts)


def read_dsn(msg: Message, parts: Parts) -> Report:
    """The failures a DSN reports; `ignored` for delay warnings and success notices."""
    blocks, per_message = _recipient_blocks(parts)
    arrival = when_of(per_message.get("arrival-date")) if per_message is not None else None
    report = Report("dsn", original=original_in(parts))
    delayed: list[str] = []
    other: list[str] = []
    for block in blocks:
        action = clean(block.get("action", ""), 40).lower()
        address = address_in(block.get("original-recipient", "")) or address_in(block.get("final-recipient", ""))
        diagnostic = _diagnostic(block)
        status = status_in(clean(block.get("status", ""), 20)) or status_in(diagnostic)
        if action.startswith(("failed", "error")):  # "error": OpenSMTPD's spelling
            when = when_of(block.get("last-attempt-date")) or arrival or when_of(msg.get("date"))
            kind = kind_of(status, BounceKind.HARD)  # failed: the relay gave up
            report.failures.append(Failure(address, kind, status or "5.0.0", diagnostic, when))
        elif action.startswith("delayed"):
            delayed.append(status or "4.0.0")
        elif action:
            other.append(action.split()[0])
    if report.failures:
        return report
    if delayed:
        report.ignored = f"a delay warning ({delayed[0]}): the relay is still trying, nothing failed yet"
    elif other:
        report.ignored = f"a delivery notice ({other[0]}), not a failure"
    else:
        ends_early = any("BoundaryNotFound" in type(d).__name__ for d in msg.defects)
        report.problem = "a delivery report with no complete recipient entry" + (
            " (the message ends early: truncated)" if ends_early else " (malformed)"
        )
    return report
