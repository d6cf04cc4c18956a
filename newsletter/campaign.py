"""One send run of an issue to the whole list: resumable, rate-limited, never twice.

The flow: render the issue once; take the issue's send lock; replay the outcome journal a killed
run may have left; stream the list into delivery rows (insert-or-update, so a resume also picks up
new subscribers); read the rows still to send in pages; push them through the delivery pool; append
each outcome to the campaign's journal (journal.py) before that connection takes its next message,
and fold the journal into the state database every couple of seconds. After a SIGKILL at most one
accepted message per connection is unrecorded, so a rerun duplicates at most `connections` messages.

`run_campaign` is the API (the CLI, the digest scheduler); it never prompts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from . import journal, store
from .config import Config
from .content import Issue
from .db import engine_for, utcnow
from .delivery.outbox import OutboxBackend
from .delivery.pool import BackendConnection, DeliveryPool, Job
from .delivery.replies import PERMANENT, SENT, Attempt
from .delivery.smtp import SmtpConnection
from .errors import DeliveryError, NewsletterError
from .message import MessageFactory
from .progress import Reporter, SilentReporter
from .ratelimit import RateLimiter
from .render import RenderedIssue, render_issue
from .subscribers import ListReport, iter_subscribers
from .suppressions import suppressed_addresses
from .unsubscribe import require_secret_for_list

EditChoice = Literal["remaining", "all", "abort"]
PAGE = 2000
HEARTBEAT_EVERY = 10.0


class AlreadySent(NewsletterError):
    """The campaign finished before; sending again needs --resend."""


class CampaignStopped(NewsletterError):
    """The campaign stopped itself (failure ratio, refused login...); `result` has the counts."""

    exit_code = 1

    def __init__(self, message: str, result: CampaignResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class CampaignResult:
    """What one run did (counts are this run's, except `already_sent` and `remaining`)."""

    key: str
    content_hash: str
    round: int = 1
    campaign_id: int = 0
    dry_run: bool = False
    to_send: int = 0  # rows to send when the run started
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0  # rows of the campaign that will not be sent (suppressed, left the list...)
    already_sent: int = 0  # sent by earlier runs of this campaign
    retries: int = 0
    reconnects: int = 0
    remaining: int = 0  # still pending or deferred after the run
    elapsed: float = 0.0
    finished: bool = False
    interrupted: bool = False
    stopped: str = ""  # why the campaign stopped itself, when it did
    bytes_total: int = 0  # dry runs: the size of every message rendered
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        done = self.sent + self.failed + self.deferred
        return done / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class Plan:
    """What `send` is about to do: shown in the confirmation prompt."""

    issue: Issue
    backend: str
    campaign: store.CampaignRow | None  # the campaign a run would resume, if any
    earlier_versions: list[store.CampaignRow]  # unfinished sends of an edited issue
    earlier_sent: int  # messages those earlier versions already delivered
    already_sent: int  # of this very campaign (resume)
    listed: int | None  # active subscribers in the list (None when not counted)
    suppressed: int | None
    list_report: ListReport | None = None  # the counting pass's findings: `skipped_message()` for the prompt

    @property
    def resuming(self) -> bool:
        return self.campaign is not None and self.campaign.status != store.FINISHED

    @property
    def recipients(self) -> int | None:
        if self.listed is None or self.suppressed is None:
            return None
        return max(0, self.listed - self.suppressed - self.already_sent)


def backend_description(config: Config) -> str:
    if config.delivery.backend == "smtp":
        s = config.smtp
        return f"smtp {s.host}:{s.port} ({s.security}, {s.connections} connections" + (
            f", {s.rate:g}/s)" if s.rate else ")"
        )
    return f"outbox {config.path('outbox')}/"


def campaign_finished(config: Config, key: str) -> bool:
    """Whether the campaign with this issue key has finished (e.g. `digest-2026-W48`)."""
    return store.is_finished(engine_for(config), key)


def _check_sendable(config: Config, issue: Issue) -> None:
    if issue.draft:
        where = ", ".join(str(a.path) for a in issue.articles if a.draft)
        raise NewsletterError(
            f"{where}: is a draft (draft: true); remove that line to send it to the list, "
            f"or use `newsletter send-test` to try it"
        )
    require_secret_for_list(config)


def plan_campaign(config: Config, issue: Issue, *, resend: bool = False, count: bool = True) -> Plan:
    """Look before sending: resume or new, an edited issue, how many would get it. Writes nothing."""
    _check_sendable(config, issue)
    engine = engine_for(config)
    current, _latest = _resumable(engine, issue, resend)
    earlier = store.unfinished_other_versions(engine, issue.key, issue.content_hash)
    listed = suppressed = None
    report = None
    if count:  # one extra pass over the list (the run imports it again): --yes skips it
        blocked = suppressed_addresses(engine)
        report = ListReport(config.path("subscribers"))
        listed = suppressed = 0
        for sub in iter_subscribers(config.path("subscribers"), report=report):
            listed += 1
            suppressed += sub.email.lower() in blocked
    return Plan(
        issue=issue,
        backend=backend_description(config),
        campaign=current,
        earlier_versions=earlier,
        earlier_sent=store.sent_count(engine, store.other_version_ids(engine, issue.key, issue.content_hash)),
        already_sent=current_counts(config, current).get(store.SENT, 0) if current else 0,
        listed=listed,
        suppressed=suppressed,
        list_report=report,
    )


def _resumable(engine: Engine, issue: Issue, resend: bool) -> tuple[store.CampaignRow | None, store.CampaignRow | None]:
    """(the campaign a run resumes: this version, still sending; this version's latest campaign).

    An issue counts as sent once any version of it finished: editing a sent article does not
    send it again; only --resend does.
    """
    latest = store.latest_campaign(engine, issue.key, issue.content_hash)
    if latest is not None and latest.status == store.SENDING:
        return latest, latest
    finished = store.finished_campaign(engine, issue.key)
    if finished is not None and not resend:
        raise _already_sent(engine, finished, issue)
    return None, latest


def _already_sent(engine: Engine, campaign: store.CampaignRow, issue: Issue) -> AlreadySent:
    counts = store.status_counts(engine, campaign.id)
    when = f"{campaign.finished_at:%Y-%m-%d %H:%M} UTC" if campaign.finished_at else "earlier"
    edited = " (an earlier version: the issue was edited since)" if campaign.content_hash != issue.content_hash else ""
    return AlreadySent(
        f"campaign {campaign.key} was already sent{edited} ({counts.get(store.SENT, 0):,} sent, finished {when}); "
        f"use --resend to send it to the whole list again"
    )


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
) -> CampaignResult:
    """Send `issue` to every active, unsuppressed subscriber not yet sent; resume when interrupted.

    `on_edit`: when an earlier version of the issue was partly sent, "remaining" sends this
    version only to those who did not get the earlier one (no one gets two), "all" to everyone
    on the list, "abort" refuses. Raises AlreadySent, CampaignStopped, store.CampaignLocked.
    """
    _check_sendable(config, issue)
    reporter = reporter or SilentReporter()
    stop = stop or asyncio.Event()
    engine = engine_for(config)
    rendered = render_issue(issue, config)
    if dry_run:
        return _dry_run(config, engine, issue, rendered, resend)
    owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    store.acquire_lock(engine, issue.key, owner)
    try:
        campaign, earlier = _open_campaign(engine, issue, resend, on_edit)
        for c in (campaign, *earlier):  # a killed run's last outcomes first: they decide who still needs it
            replay_journal(config, engine, c)
        run_started = utcnow()
        run_no = store.begin_run(engine, campaign.id)
        report = ListReport(config.path("subscribers"))

        def import_list() -> None:
            store.add_subscribers(
                engine, campaign.id, run_no, iter_subscribers(config.path("subscribers"), report=report)
            )
            store.skip_unlisted_and_suppressed(engine, campaign.id, run_no)
            if on_edit == "remaining" and not resend:
                store.skip_already_received(engine, campaign.id, issue.key, issue.content_hash)
            for old in earlier:
                store.set_status(engine, old.id, store.SUPERSEDED)

        # A big list takes a while to import: keep the lock fresh meanwhile, or it would look stale.
        await _holding_lock(engine, issue.key, owner, import_list)
        counts = store.status_counts(engine, campaign.id)
        result = CampaignResult(
            key=issue.key,
            content_hash=issue.content_hash,
            round=campaign.round,
            campaign_id=campaign.id,
            to_send=counts.get(store.PENDING, 0) + counts.get(store.DEFERRED, 0),
            already_sent=counts.get(store.SENT, 0),
        )
        if report.invalid:
            result.notes.append(report.skipped_message())
        if earlier:
            result.notes.append(
                "the issue was edited after a partial send; this version goes "
                + ("only to those who did not receive the earlier one" if on_edit == "remaining" else "to everyone")
            )
        factory = MessageFactory(rendered, config, message_key=campaign.message_key)
        sender = _Sender(config, engine, campaign, factory, result, reporter, stop, run_started, owner)
        with stop_on_signals(stop) if handle_signals else contextlib.nullcontext():
            await sender.run()
        counts = store.status_counts(engine, campaign.id)
        result.skipped = counts.get(store.SKIPPED, 0)
        result.remaining = counts.get(store.PENDING, 0) + counts.get(store.DEFERRED, 0)
        result.finished = store.finish_if_complete(engine, campaign.id)
        result.interrupted = stop.is_set() and not result.stopped and sender.pool_fatal is None
        if sender.pool_fatal is not None:
            result.stopped = str(sender.pool_fatal)
            raise CampaignStopped(str(sender.pool_fatal), result)
        if result.stopped:
            raise CampaignStopped(result.stopped, result)
        return result
    finally:
        store.release_lock(engine, issue.key, owner)


def journal_for(config: Config, campaign: store.CampaignRow) -> Path:
    """Where a campaign's outcome journal lives: next to the state database."""
    return journal.journal_path(config.path("state").resolve(), campaign.id)


def _unfolded(config: Config, engine: Engine, campaign: store.CampaignRow) -> dict[int, tuple[str, str, str]]:
    """Outcomes in the campaign's journal not yet in the database: id -> (old status, new status, address)."""
    last = {o.delivery_id: o.status for o in journal.read_journal(journal_for(config, campaign))}
    if not last:
        return {}
    rows = store.rows_by_id(engine, last)
    return {i: (rows[i][0], status, rows[i][1]) for i, status in last.items() if i in rows and rows[i][0] != status}


def current_counts(config: Config, campaign: store.CampaignRow) -> dict[str, int]:
    """Rows by status, including outcomes still in the journal (a send in progress, or a killed one).

    The database alone lags a running send by up to the fold interval (2 s), and a killed send's
    last outcomes stay in its journal until the next run replays them; `status` reads this.
    """
    engine = engine_for(config)
    counts = store.status_counts(engine, campaign.id)
    for old, new, _email in _unfolded(config, engine, campaign).values():
        counts[old] = counts.get(old, 0) - 1
        counts[new] = counts.get(new, 0) + 1
    return {status: n for status, n in counts.items() if n}


def replay_journal(config: Config, engine: Engine, campaign: store.CampaignRow) -> int:
    """Fold the journal a killed run left for `campaign` (hold its lock); returns the outcomes replayed."""
    path = journal_for(config, campaign)
    if not path.exists():
        return 0
    recorder = store.OutcomeRecorder(engine, campaign.key)
    try:
        return journal.replay(path, recorder)
    finally:
        recorder.close()


async def _holding_lock(engine: Engine, key: str, owner: str, work: Callable[[], None]) -> None:
    """Run blocking `work` in a thread while this process heartbeats its send lock on `key`."""
    task = asyncio.create_task(asyncio.to_thread(work))
    while True:
        done, _pending = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY)
        if done:
            task.result()
            return
        store.heartbeat(engine, key, owner)


def _open_campaign(
    engine: Engine, issue: Issue, resend: bool, on_edit: EditChoice
) -> tuple[store.CampaignRow, list[store.CampaignRow]]:
    """The campaign this run works on (new, resumed, or a --resend round) and edited predecessors."""
    current, latest = _resumable(engine, issue, resend)
    earlier = store.unfinished_other_versions(engine, issue.key, issue.content_hash)
    if earlier and on_edit == "abort":
        raise NewsletterError(
            f"issue {issue.key} was edited after a partial send of an earlier version; nothing sent "
            f"(choose to send the new version to the remaining subscribers or to everyone)"
        )
    if current is not None:
        return current, earlier
    round_ = latest.round + 1 if latest is not None else 1
    return store.create_campaign(engine, issue.key, issue.content_hash, round_, issue.subject, issue.title), earlier


class _Sender:
    """The part of a run that talks to the pool: paging rows in, outcomes out, the failure brake."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        campaign: store.CampaignRow,
        factory: MessageFactory,
        result: CampaignResult,
        reporter: Reporter,
        stop: asyncio.Event,
        run_started: dt.datetime,
        owner: str,
    ) -> None:
        self.config = config
        self.owner = owner
        self.engine = engine
        self.campaign = campaign
        self.factory = factory
        self.result = result
        self.reporter = reporter
        self.stop = stop
        self.run_started = run_started
        self.pool_fatal: NewsletterError | None = None
        self.last_error = ""  # the latest refusal, for the failure-ratio message
        self.recorder = store.OutcomeRecorder(engine, campaign.key)
        self.journal = journal.Journal(journal_for(config, campaign), self.recorder)

    def _connections(self) -> tuple[int, Any]:
        config = self.config
        if config.delivery.backend == "smtp":
            return config.smtp.connections, lambda: SmtpConnection(config)
        batch = self.campaign.key if self.campaign.round == 1 else f"{self.campaign.key}-r{self.campaign.round}"
        outbox = BackendConnection(OutboxBackend(config.path("outbox"), batch))
        return 1, lambda: outbox

    def _limiter(self) -> RateLimiter:
        """A relay's quota; the outbox backend has none (writing files needs no limit)."""
        if self.config.delivery.backend != "smtp":
            return RateLimiter(0, 0)
        smtp = self.config.smtp
        limiter = RateLimiter(smtp.rate, smtp.max_per_hour)
        if smtp.max_per_hour:
            now = utcnow()
            sent = store.sent_since(self.engine, now - dt.timedelta(hours=1))
            limiter.hourly.seed((now - t).total_seconds() for t in sent)
        return limiter

    async def _jobs(self) -> AsyncIterator[Job]:
        after = 0
        while not self.stop.is_set():
            page = store.pending_page(self.engine, self.campaign.id, after, PAGE)
            if not page:
                return
            for row in page:
                yield Job(id=row.id, recipient=row.email, payload=row)
            after = page[-1].id

    def _build(self, job: Job) -> bytes:
        return self.factory.build(job.payload.subscriber())

    def _report(self, job: Job, attempt: Attempt, final: bool) -> None:
        """Append the outcome to the journal (durable against a kill when this returns), then count it."""
        kind = attempt.kind
        status = store.SENT if kind == SENT else store.FAILED if kind == PERMANENT else store.DEFERRED
        self.journal.append(
            journal.Outcome(
                job.id,
                status,
                job.payload.attempts + max(job.attempts, 1),
                time.time(),
                attempt.reply,
                attempt.suppress and kind == PERMANENT,
            )
        )
        result = self.result
        if status != store.SENT:
            self.last_error = attempt.reply
        if not final:
            result.retries += 1
            return
        if status == store.SENT:
            result.sent += 1
        elif status == store.FAILED:
            result.failed += 1
        else:
            result.deferred += 1
        self.reporter.advance(status)
        self._check_failure_ratio()

    def _check_failure_ratio(self) -> None:
        smtp = self.config.smtp
        result = self.result
        done = result.sent + result.failed + result.deferred
        failures = result.failed + result.deferred
        if result.stopped or done < smtp.failure_ratio_min_sample or failures / done <= smtp.max_failure_ratio:
            return
        result.stopped = (
            f"stopped: {failures:,} of the first {done:,} messages failed (more than "
            f"{smtp.max_failure_ratio:.0%}, [smtp] max_failure_ratio); the server or its settings look wrong "
            f"(last reply: {self.last_error or 'none'}); fix that, then run send again to resume"
        )
        self.stop.set()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            held = store.heartbeat(self.engine, self.campaign.key, self.owner)
            if not held:
                self.result.stopped = f"lost the send lock of {self.campaign.key}; another process took it over"
                self.stop.set()
                return

    async def run(self) -> None:
        size, connect = self._connections()
        pool = DeliveryPool(
            connect,
            size=size,
            sender=self.factory.envelope_from,
            build=self._build,
            report=self._report,
            limiter=self._limiter(),
            max_attempts=self.config.smtp.max_attempts,
            base_delay=self.config.smtp.retry_base_delay,
            stop=self.stop,
            config=self.config if self.config.delivery.backend == "smtp" else None,
        )
        self.reporter.start(self.result.to_send, f"sending {self.campaign.key}")
        started = time.monotonic()
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            if self.result.to_send:
                await pool.run(self._jobs())
        except DeliveryError as exc:  # could not connect at all: nothing was sent
            self.pool_fatal = exc
        finally:
            heartbeat.cancel()
            self.result.reconnects = pool.reconnects
            try:
                self.journal.close()  # the last outcomes into the database; the file goes
            except BaseException:
                self.journal.abandon()  # the file stays: the next run replays it
                raise
            finally:
                self.recorder.close()
                self.reporter.stop()
                self.result.elapsed = time.monotonic() - started  # recording the outcomes included
        if pool.fatal is not None:
            self.pool_fatal = pool.fatal
        if self.result.stopped and not self.result.stopped.startswith("lost"):
            restored = store.undo_run_failures(self.engine, self.campaign.id, self.campaign.key, self.run_started)
            if restored:
                self.result.failed -= restored
                self.result.deferred += restored
                self.result.notes.append(
                    f"{restored:,} refused addresses were not suppressed (the failures look systemic); "
                    f"they are deferred and retried on the next send"
                )


def _dry_run(config: Config, engine: Engine, issue: Issue, rendered: RenderedIssue, resend: bool) -> CampaignResult:
    """Render every message, deliver none, change nothing in the state database."""
    started = time.monotonic()
    current, _latest = _resumable(engine, issue, resend)
    already: set[str] = set()
    if current is not None:
        already.update(store.sent_addresses(engine, current.id))
        already.update(e for _old, new, e in _unfolded(config, engine, current).values() if new == store.SENT)
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


__all__ = [
    "AlreadySent",
    "CampaignResult",
    "CampaignStopped",
    "Plan",
    "campaign_finished",
    "current_counts",
    "plan_campaign",
    "run_campaign",
    "stop_on_signals",
]
