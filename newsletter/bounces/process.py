"""Processing messages: examine each (no writes), then record a batch's events in one transaction.

A message's events and the suppressions they cause are committed before the message is marked
processed (moved); a crash in between leaves it in the mailbox, and the rerun finds its events
already recorded (a report counts once), so it is moved without counting twice. A message that
cannot be read, or names nobody we mailed, is skipped with a one-line reason; nothing a message
holds can stop the rest. Only the state database failing stops a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..config import Config
from ..errors import StateError
from ..state import bounces as store
from ..state.engine import engine_for, utcnow
from ..state.statuses import BounceKind
from .classify import classify
from .identify import Identifier, Target
from .message import MAX_BYTES, Incoming, Unreadable, clean, message_key, parse

Outcome = Literal["counted", "already counted", "ignored", "skipped"]
_LABELS = {BounceKind.HARD: "hard bounce", BounceKind.SOFT: "soft bounce", BounceKind.COMPLAINT: "complaint"}


@dataclass
class Examined:
    """What one message says, before anything is written."""

    ref: str
    key: str = ""
    source: str = ""
    targets: list[Target] = field(default_factory=list)
    ignored: str = ""
    skipped: str = ""
    note: str = ""


@dataclass(frozen=True)
class Handled:
    ref: str
    outcome: Outcome
    line: str  # what happened, one line
    suppressed: int = 0


@dataclass
class Summary:
    messages: int = 0
    counted: int = 0
    duplicates: int = 0
    ignored: int = 0
    skipped: int = 0
    suppressed: int = 0

    def add(self, handled: Handled) -> None:
        self.messages += 1
        self.suppressed += handled.suppressed
        if handled.outcome == "counted":
            self.counted += 1
        elif handled.outcome == "already counted":
            self.duplicates += 1
        elif handled.outcome == "ignored":
            self.ignored += 1
        else:
            self.skipped += 1

    def text(self) -> str:
        counts = f"{self.counted:,} counted, {self.ignored:,} ignored, {self.skipped:,} skipped"
        if self.duplicates:
            counts += f", {self.duplicates:,} already counted"
        messages = f"{self.messages:,} message{'' if self.messages == 1 else 's'}"
        return f"{messages}: {counts}; {self.suppressed:,} address{'' if self.suppressed == 1 else 'es'} suppressed"


def _describe(target: Target) -> str:
    failure = target.failure
    label = _LABELS[failure.kind]
    status = f"({failure.status})" if failure.kind == BounceKind.COMPLAINT else failure.status
    return f"{label} {status} {target.email}, {target.about or 'campaign unknown'}"


class Processor:
    """Examines messages and records what they report, with the configuration's rules."""

    def __init__(self, config: Config, engine: Engine | None = None) -> None:
        self.store = store.BounceStore(engine or engine_for(config))
        self.identifier = Identifier(config, self.store)
        self.rules = store.Rules(config.bounces.soft_limit, config.bounces.soft_window)

    def close(self) -> None:
        self.store.close()

    def examine(self, ref: str, incoming: Incoming) -> Examined:
        """Read, classify and identify one message; never raises for what the message holds."""
        try:
            msg = parse(incoming)
        except Unreadable as exc:
            return Examined(ref, skipped=str(exc))
        found = Examined(ref, key=message_key(msg, incoming.data))
        try:
            report = classify(msg)
            found.source = report.source
            if report.ignored:
                found.ignored = report.ignored
                return found
            if report.problem:
                found.skipped = report.problem
                return found
            identified = self.identifier.identify(report, msg, incoming)
        except (SQLAlchemyError, StateError):
            raise  # the database, not the message: stop the run
        except Exception as exc:  # anything a hostile message trips: this message only
            found.skipped = f"could not be read ({type(exc).__name__}: {clean(exc, 120)})"
            return found
        found.targets, found.ignored, found.skipped, found.note = (
            identified.targets,
            identified.ignored,
            identified.skipped,
            identified.note,
        )
        if incoming.truncated:
            found.note = ", ".join(filter(None, [found.note, f"read the first {MAX_BYTES // 1_000_000} MB only"]))
        return found

    def commit(self, batch: list[Examined]) -> list[Handled]:
        """Record the batch's events and apply the rules in one transaction; what happened to each message."""
        now = utcnow()
        events = [
            store.NewEvent(
                email=target.email,
                kind=target.failure.kind,
                campaign_id=target.campaign_id,
                status=target.failure.status,
                diagnostic=target.failure.diagnostic,
                source=examined.source,
                identified=target.identified,
                message_key=examined.key,
                occurred_at=min(target.failure.when or now, now),  # a forged future Date outlives no window
                about=target.about,
            )
            for examined in batch
            for target in examined.targets
        ]
        recorded = iter(self.store.record(events, self.rules) if events else [])
        handled = []
        for examined in batch:
            if examined.ignored:
                handled.append(Handled(examined.ref, "ignored", f"ignored: {examined.ignored}"))
                continue
            if examined.skipped or not examined.targets:
                reason = examined.skipped or "nothing to count"
                handled.append(Handled(examined.ref, "skipped", f"skipped: {reason}"))
                continue
            parts, new, suppressed = [], False, 0
            for target in examined.targets:
                done = next(recorded)
                new = new or done.new
                suppressed += done.suppressed
                parts.append(f"{_describe(target)}: {done.action}")
            line = "; ".join(parts) + (f" ({examined.note})" if examined.note else "")
            if new:
                handled.append(Handled(examined.ref, "counted", line, suppressed))
            else:
                handled.append(Handled(examined.ref, "already counted", f"already counted: {line}"))
        return handled
