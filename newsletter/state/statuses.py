"""Every status the state database stores, as StrEnums: one vocabulary each, the stored text unchanged."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    """One subscriber's row in a campaign."""

    PENDING = "pending"
    SENT = "sent"
    DEFERRED = "deferred"  # a temporary failure used up this run's attempts: a later run retries it
    FAILED = "failed"  # refused for good
    SKIPPED = "skipped"  # will not be sent: suppressed, left the list, got an earlier version


class CampaignStatus(StrEnum):
    SENDING = "sending"  # until no row is pending or deferred
    FINISHED = "finished"
    SUPERSEDED = "superseded"  # the issue was edited after a partial send and a newer campaign took over


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class SubscriberStatus(StrEnum):
    """A subscriber row's own status; a suppression (suppressions table) wins over it."""

    PENDING = "pending"  # signed up, not confirmed yet: never mailed
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class SubscriberSource(StrEnum):
    """Where a subscriber row came from, and who may change it: the CSV sync removes only its own rows."""

    CSV = "csv"  # [paths] subscribers, synced at every send
    IMPORT = "import"  # `subscribers import FILE`
    SIGNUP = "signup"  # the form of `newsletter serve`, confirmed by the link
    OPERATOR = "operator"  # `subscribers add`


class DigestStatus(StrEnum):
    PENDING = "pending"  # articles frozen, campaign not finished
    SENT = "sent"


class RunDecision(StrEnum):
    """What was decided for one scheduled run time (recorded so a restart neither repeats nor re-logs it)."""

    SENDING = "sending"  # an article chosen for this run ([schedule] mode = "each"), its campaign not done
    SENT = "sent"
    EMPTY = "empty"
    ALREADY_SENT = "already-sent"
    TOO_OLD = "too-old"
    STOPPED = "stopped"  # never recorded: the run resumes
    LOCKED = "locked"


class BounceKind(StrEnum):
    """What a bounce or feedback report says about one address (state/bounces.py applies the rules)."""

    HARD = "hard"  # 5.x.x: the mailbox does not exist or refuses for good: suppressed at once
    SOFT = "soft"  # 4.x.x after the relay gave up: suppressed after [bounces] soft_limit within soft_window
    COMPLAINT = "complaint"  # an abuse report (ARF) from a feedback loop: suppressed at once
