"""Where a run's outcomes go before the state database has them, and reading them back.

SQLite: the outcome journal next to the database file (journal.py), folded every couple of
seconds, replayed by the next run after a kill. PostgreSQL: group commits (groupcommit.py), so the
database itself is current before any connection sends its next message.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine

from ..config import Config
from ..state import deliveries
from ..state.campaigns import CampaignRow
from ..state.engine import engine_for, is_sqlite
from ..state.outcomes import Outcome, OutcomeRecorder
from ..state.statuses import DeliveryStatus
from . import journal
from .groupcommit import GroupCommit


class OutcomeLog(Protocol):
    def append(self, outcome: Outcome) -> Awaitable[None] | None:
        """Record the outcome; durable on return, or once the returned awaitable completes."""

    async def close(self) -> None:
        """Everything appended is in the database."""

    def abandon(self) -> None:
        """The database failed: keep what can be kept for the next run."""


class JournalLog:
    """SQLite: append to the journal file (durable against a kill at once), fold in batches."""

    def __init__(self, path: Path, recorder: OutcomeRecorder) -> None:
        self.recorder = recorder
        self.journal = journal.Journal(path, recorder)

    def append(self, outcome: Outcome) -> None:
        self.journal.append(outcome)

    async def close(self) -> None:
        try:
            self.journal.close()
        finally:
            self.recorder.close()

    def abandon(self) -> None:
        self.journal.abandon()
        self.recorder.close()


class CommitLog:
    """PostgreSQL: each outcome waits for its group's commit."""

    def __init__(self, engine: Engine, campaign_key: str) -> None:
        self.group = GroupCommit(engine, campaign_key)

    def append(self, outcome: Outcome) -> Awaitable[None]:
        return self.group.append(outcome)

    async def close(self) -> None:
        await self.group.close()

    def abandon(self) -> None:
        pass


def journal_for(config: Config, campaign: CampaignRow) -> Path:
    """Where a campaign's outcome journal lives: next to the state database."""
    return journal.journal_path(config.path("state").resolve(), campaign.id)


def outcome_log(config: Config, engine: Engine, campaign: CampaignRow) -> OutcomeLog:
    if is_sqlite(engine):
        return JournalLog(journal_for(config, campaign), OutcomeRecorder(engine, campaign.key))
    return CommitLog(engine, campaign.key)


def replay_journal(config: Config, engine: Engine, campaign: CampaignRow) -> int:
    """Fold the journal a killed run left for `campaign` (hold its lock); returns the outcomes replayed."""
    if not is_sqlite(engine):
        return 0
    path = journal_for(config, campaign)
    if not path.exists():
        return 0
    recorder = OutcomeRecorder(engine, campaign.key)
    try:
        return journal.replay(path, recorder)
    finally:
        recorder.close()


def unfolded(config: Config, engine: Engine, campaign: CampaignRow) -> dict[int, tuple[str, str, str]]:
    """Outcomes in the campaign's journal not yet in the database: id -> (old status, new status, address)."""
    if not is_sqlite(engine):
        return {}
    last = {o.delivery_id: o.status for o in journal.read_journal(journal_for(config, campaign))}
    if not last:
        return {}
    rows = deliveries.rows_by_id(engine, last)
    return {i: (rows[i][0], status, rows[i][1]) for i, status in last.items() if i in rows and rows[i][0] != status}


def current_counts(config: Config, campaign: CampaignRow) -> dict[DeliveryStatus, int]:
    """Rows by status, including outcomes still in the journal (a send in progress, or a killed one).

    The database alone lags a running send by up to the fold interval (2 s), and a killed send's
    last outcomes stay in its journal until the next run replays them; `status` reads this.
    """
    engine = engine_for(config)
    counts: dict[DeliveryStatus, int] = dict(deliveries.status_counts(engine, campaign.id))
    for old, new, _email in unfolded(config, engine, campaign).values():
        counts[DeliveryStatus(old)] = counts.get(DeliveryStatus(old), 0) - 1
        counts[DeliveryStatus(new)] = counts.get(DeliveryStatus(new), 0) + 1
    return {status: n for status, n in counts.items() if n}
