"""A run's list into its delivery rows, in a worker thread, while the sender follows it.

A million-row CSV takes tens of seconds to read, check and sync; waiting for it meant the first
message left long after the command started. Instead the CSV is synced batch by batch and each
batch's addresses get their delivery rows in the same transaction (`ListWriter`'s `on_batch`), so
the sender can start on the first thousand while the rest is read. What the sender may take:

- new rows (ids after `boundary`, the highest id before this run), as soon as they are committed;
- rows from earlier runs of the campaign (a resume), only once the whole list has been read: only
  then is it known whether they are still on it (`seen_run`) or left and must be skipped.

Pages leave out addresses suppressed meanwhile. An edited issue, a `--resend`, a segment, or an
issue sent to another audience before take the plain way (the whole list first), since who must be
skipped depends on the whole list.

A streamed list is checked as a whole once read (plan.py's `list_problems`: a stray quote, many
invalid rows, too few recipients against the last campaign). A list found wrong stops the sender
where it is: nobody was removed, the campaign waits, and the next run (list fixed, or confirmed
with --allow-shrink) sends the rest, nobody twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from ..config import Config
from ..content.issue import Issue
from ..content.listsync import SyncResult, sync_csv
from ..state import audience, campaigns, deliveries
from ..state.campaigns import CampaignRow
from ..state.signups import purge_pending
from ..state.statuses import CampaignStatus
from ..state.unsubscribes import fold


class ListImport:
    """The list of one run into its campaign's delivery rows; `streaming`: batch by batch, in a thread."""

    def __init__(
        self,
        config: Config,
        engine: Engine,
        issue: Issue,
        campaign: CampaignRow,
        run: int,
        earlier: list[CampaignRow],
        others: list[int],
        *,
        resend: bool,
        remaining_only: bool,
        synced: SyncResult | None,
        allow_shrink: bool = False,
        check: Callable[[SyncResult], None] = lambda synced: None,
        csv_lines: int | None = None,
    ) -> None:
        self.config = config
        self.engine = engine
        self.issue = issue
        self.campaign = campaign
        self.run = run
        self.earlier = earlier
        self.others = others
        self.resend = resend
        self.remaining_only = remaining_only
        self.synced = synced
        self.streaming = synced is None
        self.allow_shrink = allow_shrink
        self.check = check  # the whole list's checks, once read: raising stops the sender where it is
        self.csv_lines = csv_lines  # counted by the caller: the file is not read twice for it
        self.boundary = audience.last_delivery_id(engine) if self.streaming else 0
        self.done = threading.Event()
        self.error: BaseException | None = None
        self._wake: Callable[[], None] = lambda: None

    def work(self) -> None:
        """Everything, on the calling thread (a worker thread while the sender follows)."""
        try:
            engine, cid = self.engine, self.campaign.id
            if self.streaming:
                fold(self.config, engine)  # unsubscribes `serve` kept in its journal: suppressed first
                purge_pending(engine, self.config.signup.confirm_expiry)
                audience.add_deliveries(engine, cid, self.run, except_csv=True)
                self._wake()
                self.synced = sync_csv(
                    self.config, engine, on_batch=self._batch, allow_shrink=self.allow_shrink, csv_lines=self.csv_lines
                )
                self.check(self.synced)
            else:
                audience.add_deliveries(engine, cid, self.run, self.issue.audience)
            deliveries.skip_unlisted_and_suppressed(engine, cid, self.run)
            if self.remaining_only:
                deliveries.skip_already_received(engine, cid, self.campaign.key, self.issue.content_hash)
            if not self.resend and self.others:
                audience.skip_received_in(engine, cid, self.others)
            for old in self.earlier:
                campaigns.set_status(engine, old.id, CampaignStatus.SUPERSEDED)
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.done.set()
            self._wake()

    def _batch(self, raw: Any, keys: list[str]) -> None:
        audience.add_deliveries_for(self.engine, raw, self.campaign.id, self.run, keys)
        self._wake()  # the batch commits right after this; the sender's next look finds it

    async def start(self) -> asyncio.Future[None]:
        """Run `work` in a thread; the sender waits on `changed()` for new rows or the end."""
        loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(self._event.set)

        self._wake = wake
        return loop.run_in_executor(None, self.work)

    async def changed(self, timeout: float = 0.25) -> None:
        """Until the import says something changed (a batch, the end), or `timeout` (a batch commits after)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()
