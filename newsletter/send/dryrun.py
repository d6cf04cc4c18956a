"""`send --dry-run`: render every message, deliver none, record no campaign.

Like every send it first syncs the CSV into the list, so the counts are the real send's.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import Engine

from ..config import Config
from ..content.issue import Issue
from ..content.subscribers import Subscriber
from ..errors import NewsletterError
from ..render.issue import RenderedIssue
from ..render.mime import MessageFactory
from ..state import audience, deliveries
from ..state.statuses import DeliveryStatus
from ..state.suppressions import suppressed_addresses
from .audience import check_audience, other_sends, sync_list
from .lost import lost_state
from .plan import list_problems, reference_for, resumable
from .recording import unfolded
from .result import CampaignResult


def dry_run(config: Config, engine: Engine, issue: Issue, rendered: RenderedIssue, resend: bool) -> CampaignResult:
    started = time.monotonic()
    synced = sync_list(config, engine)
    check_audience(config, engine, issue)
    current, _latest = resumable(engine, issue, resend)
    already: set[str] = set()
    if current is not None:
        already.update(deliveries.sent_addresses(engine, current.id))
        already.update(e for _old, new, e in unfolded(config, engine, current).values() if new == DeliveryStatus.SENT)
    blocked = suppressed_addresses(engine)
    if not resend:
        blocked.update(audience.received_addresses(engine, other_sends(engine, issue)))
    message_key = current.message_key if current is not None else issue.campaign_key
    factory = MessageFactory(rendered, config, message_key=message_key)
    result = CampaignResult(
        key=issue.campaign_key, content_hash=issue.content_hash, dry_run=True, already_sent=len(already)
    )
    if synced.report.invalid:
        result.notes.append(synced.report.skipped_message())
    result.notes += list_problems(
        engine, issue, synced, reference_for(engine, issue, current)
    )  # a real send would need --allow-shrink
    if lost := lost_state(config, engine, issue):
        result.notes.append(lost)
    for row in audience.iter_audience(engine, issue.audience):
        key = row.email.lower()
        if key in blocked:
            result.skipped += 1
        elif key not in already:
            sub = Subscriber(email=row.email, name=row.name, fields=json.loads(row.fields), line=row.line)
            try:
                result.bytes_total += len(factory.build(sub))
                result.to_send += 1
            except NewsletterError as exc:
                result.failed += 1
                result.notes.append(str(exc))
    result.elapsed = time.monotonic() - started
    return result
