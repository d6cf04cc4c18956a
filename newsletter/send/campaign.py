"""One send run of an issue to the whole list: resumable, rate-limited, never twice.

The flow: render the issue once; take the issue's lock; replay the outcome journal a killed run
may have left; sync the CSV into the list and copy the audience into delivery rows (insert-or-update,
so a resume also picks up new subscribers); read the rows still to send in pages; push them
through the delivery pool; record each outcome before that connection takes its next message
(recording.py). After a SIGKILL at most one accepted message per connection is unrecorded, so a
rerun duplicates at most `connections`.

`run_campaign` is the API (the CLI, the digest); it never prompts.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator

from ..config import Config
from ..content.csvfile import data_lines
from ..content.issue import Issue
from ..errors import CampaignStopped, NewsletterError
from ..render.issue import render_issue
from ..render.mime import MessageFactory
from ..state import campaigns, deliveries
from ..state.engine import engine_for, utcnow
from ..state.history import record_run
from ..state.lock import Lock
from ..state.statuses import DeliveryStatus
from . import dryrun
from .audience import check_audience, check_list, other_sends, sync_list
from .listimport import ListImport
from .lost import lost_state, orphan_journals, set_aside
from .plan import (
    EditChoice,
    check_sendable,
    confirmations,
    list_problems,
    open_campaign,
    reference_for,
    refuse_unconfirmed,
    resumable,
    streamed_list_problems,
)
from .progress import Reporter, SilentReporter
from .recording import replay_journal
from .result import CampaignResult
from .sender import Sender
from .transports import wire_form


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set `stop`: in-flight messages finish and are recorded, nothing new starts."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def run_campaign(
    config: Config,
    issue: Issue,
    *,
    resend: bool = False,
    dry_run: bool = False,
    on_edit: EditChoice = "remaining",
    stop: asyncio.Event | None = None,
    reporter: Reporter | None = None,
    handle_signals: bool = False,
    allow_shrink: bool = False,
    accept_new_state: bool = False,
) -> CampaignResult:
    """Send `issue` to every active, unsuppressed subscriber not yet sent; resume when interrupted.

    `on_edit`: when an earlier version of the issue was partly sent, "remaining" sends this
    version only to those who did not get the earlier one (no one gets two), "all" to everyone
    on the list, "abort" refuses. Raises AlreadySent, CampaignStopped, Locked. A list that looks
    wrong needs `allow_shrink`, a database that forgot earlier sends `accept_new_state` (plan.py).
    """
    check_sendable(config, issue, dry_run=dry_run)
    reporter = reporter or SilentReporter()
    stop = stop or asyncio.Event()
    engine = engine_for(config)
    rendered = render_issue(issue, config)
    if dry_run:
        return dryrun.dry_run(config, engine, issue, rendered, resend)
    lock = Lock(engine, campaigns.lock_name(issue.key))
    lock.acquire_or_raise(f"campaign {issue.key}")
    lost = asyncio.Event()
    # Renewed in the background: a big list takes a while to import, and the lock must stay fresh.
    lock.keep_renewed(on_lost=lost)
    try:
        # The list checks (plan.py) decide before any campaign exists. A big CSV streams into the campaign
        # while the first messages go out (listimport.py): it is checked for its size up front and in full
        # once read, and a list found wrong then stops the send where it is. Anything that depends on the
        # whole list (a segment, an edited issue, a resend, another audience's send) reads it first.
        words = confirmations(allow_shrink, accept_new_state)
        reference = reference_for(engine, issue, resumable(engine, issue, resend)[0])
        forgotten = lost_state(config, engine, issue)
        others = [] if resend else other_sends(engine, issue)
        lines = data_lines(config.path("subscribers"))
        streamed = (
            lines >= config.delivery.stream_from
            and not (issue.audience or resend or others)
            and not campaigns.unfinished_other_versions(engine, issue.campaign_key, issue.content_hash)
        )
        synced = None
        estimate = 0
        if streamed:
            estimate = check_list(config, engine, lines)
            refuse_unconfirmed(streamed_list_problems(engine, lines, reference), forgotten, words)
        else:
            synced = await asyncio.to_thread(sync_list, config, engine, allow_shrink=words.shrink, csv_lines=lines)
            check_audience(config, engine, issue)
            refuse_unconfirmed(list_problems(engine, issue, synced, reference), forgotten, words)
        if forgotten:  # starting over, as the operator said: a lost database's journals are not replayed
            set_aside(orphan_journals(config, {c.id for c in campaigns.campaigns_for(engine)}))
        campaign, earlier = open_campaign(engine, issue, resend, on_edit)
        record_run(config, campaign.key, campaign.id)
        for c in (campaign, *earlier):  # a killed run's last outcomes first: they decide who still needs it
            replay_journal(config, engine, c)
        run_started = utcnow()
        run_no = campaigns.begin_run(engine, campaign.id)
        feed = ListImport(
            config,
            engine,
            issue,
            campaign,
            run_no,
            earlier,
            others,
            resend=resend,
            remaining_only=on_edit == "remaining" and not resend,
            synced=synced,
            allow_shrink=words.shrink,
            check=lambda read: refuse_unconfirmed(list_problems(engine, issue, read, reference), "", words),
            csv_lines=lines,
        )
        counts = deliveries.status_counts(engine, campaign.id)
        importing = None
        if feed.streaming:
            importing = await feed.start()
            to_send = estimate + counts.get(DeliveryStatus.DEFERRED, 0)
        else:
            await asyncio.to_thread(feed.work)
            counts = deliveries.status_counts(engine, campaign.id)
            to_send = counts.get(DeliveryStatus.PENDING, 0) + counts.get(DeliveryStatus.DEFERRED, 0)
        result = CampaignResult(
            key=campaign.key,
            content_hash=issue.content_hash,
            round=campaign.round,
            campaign_id=campaign.id,
            to_send=to_send,
            already_sent=counts.get(DeliveryStatus.SENT, 0),
        )
        if earlier:
            result.notes.append(
                "the issue was edited after a partial send; this version goes "
                + ("only to those who did not receive the earlier one" if on_edit == "remaining" else "to everyone")
            )
        factory = MessageFactory(rendered, config, message_key=campaign.message_key, wire=wire_form(config))
        sender = Sender(config, engine, campaign, factory, result, reporter, stop, run_started, feed)
        watcher = asyncio.create_task(_watch_lock(lost, sender))
        try:
            with stop_on_signals(stop) if handle_signals else contextlib.nullcontext():
                await sender.run()
        finally:
            watcher.cancel()
            if importing is not None:
                await asyncio.wait({importing})  # the import's last batch and its bookkeeping
        if importing is not None:
            try:
                importing.result()  # a list found wrong once read stops the run here, said in one line
            except NewsletterError as exc:
                raise type(exc)(
                    f"{exc}; the send stopped there, after {result.sent:,} messages to rows read before it "
                    f"(the same command sends the rest, nobody twice)"
                ) from None
        if feed.synced is not None:
            if feed.synced.report.invalid:
                result.notes.append(feed.synced.report.skipped_message())
            if feed.synced.missing and feed.synced.kept:
                result.notes.append(feed.synced.summary())
        counts = deliveries.status_counts(engine, campaign.id)
        result.skipped = counts.get(DeliveryStatus.SKIPPED, 0)
        result.remaining = counts.get(DeliveryStatus.PENDING, 0) + counts.get(DeliveryStatus.DEFERRED, 0)
        result.finished = deliveries.finish_if_complete(engine, campaign.id)
        result.interrupted = stop.is_set() and not result.stopped and sender.pool_fatal is None
        if sender.pool_fatal is not None:
            result.stopped = str(sender.pool_fatal)
            raise CampaignStopped(str(sender.pool_fatal), result)
        if result.stopped:
            raise CampaignStopped(result.stopped, result)
        return result
    finally:
        await lock.aclose(failing=sys.exc_info()[1] is not None)  # never masks the error that stopped the run


async def _watch_lock(lost: asyncio.Event, sender: Sender) -> None:
    await lost.wait()
    sender.lock_lost()
