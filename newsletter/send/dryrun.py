"""`send --dry-run`: render every message, deliver none, change nothing in the state database."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from ..config import Config
from ..content.issue import Issue
from ..content.subscribers import iter_subscribers
from ..errors import NewsletterError
from ..render.issue import RenderedIssue
from ..render.mime import MessageFactory
from ..state import deliveries
from ..state.statuses import DeliveryStatus
from ..state.suppressions import suppressed_addresses
from .plan import resumable
from .recording import unfolded
from .result import CampaignResult


def dry_run(config: Config, engine: Engine, issue: Issue, rendered: RenderedIssue, resend: bool) -> CampaignResult:
    started = time.monotonic()
    current, _latest = resumable(engine, issue, resend)
    already: set[str] = set()
    if current is not None:
        already.update(deliveries.sent_addresses(engine, current.id))
        already.update(e for _old, new, e in unfolded(config, engine, current).values() if new == DeliveryStatus.SENT)
    blocked = suppressed_addresses(engine)
    message_key = current.message_key if current is not None else f"{issue.key}:{issue.content_hash}"
    factory = MessageFactory(rendered, config, message_key=message_key)
    result = CampaignResult(key=issue.key, content_hash=issue.content_hash, dry_run=True, already_sent=len(already))
    for sub in iter_subscribers(config.path("subscribers")):
        key = sub.email.lower()
        if key in blocked:
            result.skipped += 1
        elif key not in already:
            try:
                result.bytes_total += len(factory.build(sub))
                result.to_send += 1
            except NewsletterError as exc:
                result.failed += 1
                result.notes.append(str(exc))
    result.elapsed = time.monotonic() - started
    return result
