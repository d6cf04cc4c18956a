"""What one scheduled send came to, in the words users read, and the campaign run behind every kind.

Three kinds of scheduled send share it: a run's digest, a run's article (`[schedule] mode = "each"`)
and an article's own `send_at`. All of them take the one schedule lock (`schedule_lock`), so one
process at a time decides and sends; the campaigns keep their own never-twice guarantee below it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from ..config import Config
from ..content.issue import Issue
from ..errors import AlreadySent, Locked
from ..send.campaign import run_campaign
from ..send.plan import EditChoice
from ..send.progress import Reporter
from ..state import campaigns, deliveries
from ..state.engine import engine_for
from ..state.lock import Lock
from ..state.statuses import RunDecision

# The lock of all scheduled work; "digest" is the name earlier releases gave it, so an older
# scheduler still running during an upgrade excludes a new one.
LOCK_NAME = "digest"
log = logging.getLogger("newsletter.schedule")
Kind = Literal["digest", "article", "scheduled"]


def count_articles(count: int) -> str:
    return f"{count} article{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Outcome:
    """One decision: a digest, a run's article or a scheduled article; `key` is its campaign key."""

    status: RunDecision
    key: str
    kind: Kind = "digest"
    recipients: int = 0
    articles: int = 0
    note: str = ""  # why, for the decisions that need one (too old)

    @classmethod
    def settled(cls, decision: RunDecision | None, key: str, kind: Kind) -> Outcome:
        """A run settled before: "nothing new" when that was the decision, else "already sent"."""
        return cls(RunDecision.EMPTY if decision == RunDecision.EMPTY else RunDecision.ALREADY_SENT, key, kind)

    @property
    def message(self) -> str:
        if self.kind == "digest":
            return self._digest()
        what = f"scheduled article {self.key}" if self.kind == "scheduled" else f"article {self.key}"
        if self.status == RunDecision.SENT:
            return f"sent {what} to {self.recipients} subscribers"
        if self.status == RunDecision.EMPTY:
            return "no article waiting to be sent: skipped"
        if self.status == RunDecision.ALREADY_SENT:
            return f"{what} was already sent: skipped"
        if self.status == RunDecision.TOO_OLD:
            return f"{what}: {self.note}"
        if self.status == RunDecision.LOCKED:
            return f"{what}: another process is sending it: skipped"
        return f"{what}: stopped before the end; the next start resumes it"

    def _digest(self) -> str:
        period = self.key.removeprefix("digest-")
        if self.status == RunDecision.SENT:
            return f"sent digest {period} to {self.recipients} subscribers ({count_articles(self.articles)})"
        if self.status == RunDecision.EMPTY:
            return "nothing new: skipped"
        if self.status == RunDecision.ALREADY_SENT:
            return f"digest {period} was already sent: skipped"
        if self.status == RunDecision.TOO_OLD:
            return self.note
        if self.status == RunDecision.LOCKED:
            return f"digest {period}: another process is sending it: skipped"
        return f"digest {period}: stopped before the end; the next start resumes it"


@contextlib.asynccontextmanager
async def schedule_lock(config: Config, stop: asyncio.Event | None, *, wait: bool = True) -> AsyncIterator[bool]:
    """Hold the schedule lock (renewed while held); yields False when `stop` came first, or when it is
    taken and `wait` is off."""
    lock = Lock(engine_for(config), LOCK_NAME)
    if wait:
        held = await lock.acquire(stop)
    else:
        held = await asyncio.to_thread(lock.try_acquire)
        if held:
            lock.keep_renewed()
    try:
        yield held
    finally:
        if held:
            await lock.aclose(failing=sys.exc_info()[1] is not None)


async def run_issue(
    config: Config, issue: Issue, stop: asyncio.Event | None, reporter: Reporter | None, on_edit: EditChoice
) -> tuple[bool, int] | None:
    """run_campaign, reduced to (finished, subscribers who have it); None when another sender holds it.

    An issue already finished (a crash after its campaign, before the decision was recorded) counts as sent.
    """
    engine = engine_for(config)
    try:
        result = await run_campaign(config, issue, stop=stop, reporter=reporter, on_edit=on_edit)
    except AlreadySent:
        return True, deliveries.sent_count(engine, [c.id for c in campaigns.campaigns_for(engine, issue.key)])
    except Locked as exc:
        log.info("%s", exc)
        return None
    return result.finished, result.sent + result.already_sent
