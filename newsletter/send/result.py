"""What one send run did: the counts the CLI prints and the scheduler logs."""

from __future__ import annotations

from dataclasses import dataclass, field


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
