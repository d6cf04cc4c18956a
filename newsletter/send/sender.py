"""The part of a run that talks to the pool: rows paged in, outcomes out, the failure brake."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable

from sqlalchemy import Engine

from ..config import Config
from ..content.subscribers import Subscriber
from ..errors import DeliveryError, NewsletterError
from ..render.mime import MessageFactory
from ..state import deliveries
from ..state.campaigns import CampaignRow
from ..state.deliveries import PendingRow
from ..state.engine import utcnow
from ..state.outcomes import Outcome
from ..state.statuses import DeliveryStatus
from .listimport import ListImport
from .pool import DeliveryPool, Job
from .progress import Reporter
from .ratelimit import RateLimiter
from .recording import outcome_log
from .result import CampaignResult
from .signing import SigningPool, cpus
from .transport import Attempt, AttemptKind
from .transports import transport_for
from .verp import verp_for

PAGE = 2000
_STATUS = {
    AttemptKind.SENT: DeliveryStatus.SENT,
    AttemptKind.PERMANENT: DeliveryStatus.FAILED,
    AttemptKind.TRANSIENT: DeliveryStatus.DEFERRED,
    AttemptKind.FATAL: DeliveryStatus.DEFERRED,
}


class Sender:
    def __init__(
        self,
        config: Config,
        engine: Engine,
        campaign: CampaignRow,
        factory: MessageFactory,
        result: CampaignResult,
        reporter: Reporter,
        stop: asyncio.Event,
        run_started: dt.datetime,
        feed: ListImport,
    ) -> None:
        self.config = config
        self.feed = feed
        self.engine = engine
        self.campaign = campaign
        self.factory = factory
        self.result = result
        self.reporter = reporter
        self.stop = stop
        self.run_started = run_started
        self.pool_fatal: NewsletterError | None = None
        self.last_error = ""  # the latest refusal, for the failure-ratio message
        self.verp = verp_for(config)  # each message's own envelope sender, when [bounces] address is set
        self.log = outcome_log(config, engine, campaign)

    def _limiter(self) -> RateLimiter:
        """A relay's quota; the outbox has none (writing files needs no limit)."""
        if self.config.delivery.backend != "smtp":
            return RateLimiter(0, 0)
        smtp = self.config.smtp
        limiter = RateLimiter(smtp.rate, smtp.max_per_hour)
        if smtp.max_per_hour:
            now = utcnow()
            sent = deliveries.sent_since(self.engine, now - dt.timedelta(hours=1))
            limiter.hourly.seed((now - t).total_seconds() for t in sent)
        return limiter

    async def _jobs(self) -> AsyncIterator[Job]:
        """This run's new rows as the list import commits them; then an earlier run's rows it confirmed."""
        feed, run = self.feed, self.feed.run
        after = feed.boundary
        while not self.stop.is_set():
            finished = feed.done.is_set()  # read before the page: a row committed after it is still found
            page = deliveries.pending_page(self.engine, self.campaign.id, run, after, PAGE)
            if page:
                for job in self._to_jobs(page):
                    yield job
                after = page[-1].id
            elif finished or feed.error is not None:
                break
            else:
                await feed.changed()
        if feed.error is not None:
            return
        after = 0
        while feed.boundary and not self.stop.is_set():
            page = deliveries.pending_page(self.engine, self.campaign.id, run, after, PAGE, upto=feed.boundary)
            if not page:
                return
            for job in self._to_jobs(page):
                yield job
            after = page[-1].id

    def _to_jobs(self, page: list[PendingRow]) -> list[Job]:
        verp, campaign_id = self.verp, self.campaign.id
        return [
            Job(
                id=row.id,
                recipient=row.email,
                payload=row,
                sender=verp.list_sender(campaign_id, row.id, row.email) if verp else "",
            )
            for row in page
        ]

    def _build(self, job: Job) -> bytes:
        row = job.payload
        return self.factory.build(Subscriber(email=row.email, name=row.name, fields=row.field_values(), line=row.line))

    def _build_unsigned(self, job: Job) -> bytes:
        row = job.payload
        subscriber = Subscriber(email=row.email, name=row.name, fields=row.field_values(), line=row.line)
        return self.factory.build(subscriber, sign=False)

    def _report(self, job: Job, attempt: Attempt, final: bool) -> Awaitable[None] | None:
        """Record the outcome (durable against a kill when this returns, or once its awaitable is done)."""
        kind = attempt.kind
        status = _STATUS[kind]
        pending = self.log.append(
            Outcome(
                job.id,
                status,
                job.payload.attempts + max(job.attempts, 1),
                time.time(),
                attempt.reply,
                attempt.suppress and kind == AttemptKind.PERMANENT,
            )
        )
        result = self.result
        if status != DeliveryStatus.SENT:
            self.last_error = attempt.reply
        if not final:
            result.retries += 1
            return pending
        if status == DeliveryStatus.SENT:
            result.sent += 1
        elif status == DeliveryStatus.FAILED:
            result.failed += 1
        else:
            result.deferred += 1
        self.reporter.advance(status)
        self._check_failure_ratio()
        return pending

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

    def lock_lost(self) -> None:
        self.result.stopped = f"lost the send lock of {self.campaign.key}; another process took it over"
        self.stop.set()

    async def run(self) -> None:
        batch = self.campaign.key if self.campaign.round == 1 else f"{self.campaign.key}-r{self.campaign.round}"
        size, connect = transport_for(self.config, batch)
        signer = self.factory.signer
        signing = None
        if signer is not None and SigningPool.worth_it(signer, self.result.to_send):
            signing = SigningPool(signer, self.factory.wire, self._build_unsigned, workers=cpus())
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
            build_batch=signing.build_batch if signing is not None else None,
        )
        self.reporter.start(self.result.to_send, f"sending {self.campaign.key}")
        started = time.monotonic()
        try:
            if self.result.to_send:
                await pool.run(self._jobs())
        except DeliveryError as exc:  # could not connect at all: nothing was sent
            self.pool_fatal = exc
        finally:
            if signing is not None:
                signing.close()
            self.result.reconnects = pool.reconnects
            try:
                await self.log.close()  # the last outcomes into the database
            except BaseException:
                self.log.abandon()  # a journal file stays: the next run replays it
                raise
            finally:
                self.reporter.stop()
                self.result.elapsed = time.monotonic() - started  # recording the outcomes included
        if pool.fatal is not None:
            self.pool_fatal = pool.fatal
        if pool.live < size:
            self.result.notes.append(
                f"the relay refused more than {pool.live} connections at once (421 at connect); the run went on with "
                f"{pool.live}: set [smtp] connections = {pool.live} to match it"
            )
        if self.result.stopped and not self.result.stopped.startswith("lost"):
            restored = deliveries.undo_run_failures(self.engine, self.campaign.id, self.campaign.key, self.run_started)
            if restored:
                self.result.failed -= restored
                self.result.deferred += restored
                self.result.notes.append(
                    f"{restored:,} refused addresses were not suppressed (the failures look systemic); "
                    f"they are deferred and retried on the next send"
                )
