"""The part of a run that talks to the pool: rows paged in, outcomes out, the failure brakes.

Two failure brakes: the whole run (more than `max_failure_ratio` of at least
`failure_ratio_min_sample` messages failed) and a sliding window of the last 100 outcomes, so a
relay that starts refusing after a long good stretch (a daily quota answered with a bare 550) is
caught within a window, not only once the failures outnumber everything sent before. When a brake
trips, or the relay pauses the run (its own refusal, a stall), the refusals recorded since the
window began are undone: deferred, not failed, and nobody suppressed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable

from sqlalchemy import Engine

from ..config import Config, format_duration
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
WINDOW = 100  # the sliding brake looks at this many latest outcomes
_STATUS = {
    AttemptKind.SENT: DeliveryStatus.SENT,
    AttemptKind.PERMANENT: DeliveryStatus.FAILED,
    AttemptKind.TRANSIENT: DeliveryStatus.DEFERRED,
    AttemptKind.RELAY: DeliveryStatus.DEFERRED,
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
        self.window: deque[tuple[float, bool]] = deque()  # (time, failed) of the latest WINDOW outcomes
        self.window_failures = 0
        self.suspect_since = run_started  # refusals recorded after this are undone when a brake trips
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
        while not self.stop.is_set() and feed.error is None:  # a list found wrong: no new pages
            finished = feed.done.is_set()  # read before the page: a row committed after it is still found
            page = deliveries.pending_page(self.engine, self.campaign.id, run, after, PAGE)
            if page:
                for job in self._to_jobs(page):
                    yield job
                after = page[-1].id
            elif finished:
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
        self._slide(status != DeliveryStatus.SENT)
        self._check_failure_ratio()
        return pending

    def _slide(self, failed: bool) -> None:
        window = self.window
        window.append((time.time(), failed))
        self.window_failures += failed
        if len(window) > WINDOW:
            self.window_failures -= window.popleft()[1]

    def _window_start(self) -> dt.datetime:
        first = self.window[0][0] if self.window else time.time()
        return dt.datetime.fromtimestamp(first, dt.UTC).replace(tzinfo=None)

    def _check_failure_ratio(self) -> None:
        smtp = self.config.smtp
        result = self.result
        done = result.sent + result.failed + result.deferred
        failures = result.failed + result.deferred
        if result.stopped or done < smtp.failure_ratio_min_sample:
            return
        if failures / done > smtp.max_failure_ratio:
            which = f"{failures:,} of the first {done:,} messages"
        elif self.window_failures / len(self.window) > smtp.max_failure_ratio:
            which = f"{self.window_failures:,} of the last {len(self.window):,} messages"
            self.suspect_since = self._window_start()
        else:
            return
        result.stopped = (
            f"stopped: {which} failed (more than {smtp.max_failure_ratio:.0%}, [smtp] max_failure_ratio); the "
            f"server or its settings look wrong (last reply: {self.last_error or 'none'}); nobody was suppressed "
            f"for it; fix that, then run send again to resume"
        )
        self.stop.set()

    def _paused(self, pool: DeliveryPool) -> None:
        """The relay's own refusal or a stall: why the run paused, in one line."""
        if self.result.stopped and pool.relay is None:
            return
        self.suspect_since = self._window_start()
        if pool.relay is not None:
            self.result.stopped = (
                f"paused: the relay answered {pool.relay.reply}: a quota, rate, policy or system problem of the "
                f"relay, not the addresses; nobody was suppressed; when the relay takes mail again, run send again "
                f"to resume"
            )
        elif pool.stalled:
            self.result.stopped = (
                f"paused: no message was delivered for {format_duration(self.config.smtp.stall_timeout)} "
                f"([smtp] stall_timeout): the relay takes connections but does not finish messages (last reply: "
                f"{self.last_error or 'none'}); nobody was suppressed; check the relay, then run send again to resume"
            )

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
            stall_timeout=self.config.smtp.stall_timeout.total_seconds(),
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
        elif pool.relay is not None or pool.stalled:
            self._paused(pool)
        if pool.live < size:
            self.result.notes.append(
                f"the relay refused more than {pool.live} connections at once (421 at connect); the run went on with "
                f"{pool.live}: set [smtp] connections = {pool.live} to match it"
            )
        if self.result.stopped and not self.result.stopped.startswith("lost"):
            restored = deliveries.undo_run_failures(
                self.engine, self.campaign.id, self.campaign.key, max(self.suspect_since, self.run_started)
            )
            if restored:
                self.result.failed -= restored
                self.result.deferred += restored
                self.result.notes.append(
                    f"{restored:,} refused addresses were not suppressed (the failures look systemic); "
                    f"they are deferred and retried on the next send"
                )
