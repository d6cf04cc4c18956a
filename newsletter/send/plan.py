"""Before a send: which campaign a run works on (new, resumed, a --resend round), and the prompt's plan.

An issue counts as sent once any version of it finished: editing a sent article does not send it
again; only --resend does. Nothing here writes, except `open_campaign`, which the run calls under
the issue's lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine

from ..config import Config
from ..content.issue import Issue
from ..content.subscribers import ListReport, iter_subscribers
from ..errors import AlreadySent, NewsletterError
from ..render.unsubscribe import require_secret_for_list
from ..state import campaigns, deliveries
from ..state.campaigns import CampaignRow
from ..state.engine import engine_for
from ..state.statuses import CampaignStatus, DeliveryStatus
from ..state.suppressions import suppressed_addresses
from .preflight import require_ready
from .recording import current_counts
from .transports import describe_transport
from .verp import verp_for

EditChoice = Literal["remaining", "all", "abort"]


@dataclass(frozen=True)
class Plan:
    """What `send` is about to do: shown in the confirmation prompt."""

    issue: Issue
    backend: str
    campaign: CampaignRow | None  # the campaign a run would resume, if any
    earlier_versions: list[CampaignRow]  # unfinished sends of an edited issue
    earlier_sent: int  # messages those earlier versions already delivered
    already_sent: int  # of this very campaign (resume)
    listed: int | None  # active subscribers in the list (None when not counted)
    suppressed: int | None
    list_report: ListReport | None = None  # the counting pass's findings: `skipped_message()` for the prompt

    @property
    def resuming(self) -> bool:
        return self.campaign is not None and self.campaign.status != CampaignStatus.FINISHED

    @property
    def recipients(self) -> int | None:
        if self.listed is None or self.suppressed is None:
            return None
        return max(0, self.listed - self.suppressed - self.already_sent)


def check_sendable(config: Config, issue: Issue, *, dry_run: bool = False) -> None:
    """Refuse what must not go to the list: a draft, broken links, a set-up `newsletter doctor` calls wrong."""
    if issue.draft:
        where = ", ".join(str(a.path) for a in issue.articles if a.draft)
        raise NewsletterError(
            f"{where}: is a draft (draft: true); remove that line to send it to the list, "
            f"or use `newsletter send-test` to try it"
        )
    require_secret_for_list(config)
    verp_for(config)  # a bounce address needs the secret its tokens are signed with
    if not dry_run:  # an example From or postal address, a DKIM key that cannot sign...
        require_ready(config, f"{issue.key} to the list over SMTP")


def resumable(engine: Engine, issue: Issue, resend: bool) -> tuple[CampaignRow | None, CampaignRow | None]:
    """(the campaign a run resumes: this version, still sending; this version's latest campaign)."""
    latest = campaigns.latest_campaign(engine, issue.key, issue.content_hash)
    if latest is not None and latest.status == CampaignStatus.SENDING:
        return latest, latest
    finished = campaigns.finished_campaign(engine, issue.key)
    if finished is not None and not resend:
        raise _already_sent(engine, finished, issue)
    return None, latest


def _already_sent(engine: Engine, campaign: CampaignRow, issue: Issue) -> AlreadySent:
    counts = deliveries.status_counts(engine, campaign.id)
    when = f"{campaign.finished_at:%Y-%m-%d %H:%M} UTC" if campaign.finished_at else "earlier"
    edited = " (an earlier version: the issue was edited since)" if campaign.content_hash != issue.content_hash else ""
    return AlreadySent(
        f"campaign {campaign.key} was already sent{edited} ({counts.get(DeliveryStatus.SENT, 0):,} sent, "
        f"finished {when}); use --resend to send it to the whole list again"
    )


def plan_campaign(config: Config, issue: Issue, *, resend: bool = False, count: bool = True) -> Plan:
    """Look before sending: resume or new, an edited issue, how many would get it. Writes nothing."""
    check_sendable(config, issue)
    engine = engine_for(config)
    current, _latest = resumable(engine, issue, resend)
    earlier = campaigns.unfinished_other_versions(engine, issue.key, issue.content_hash)
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
        backend=describe_transport(config),
        campaign=current,
        earlier_versions=earlier,
        earlier_sent=deliveries.sent_count(engine, campaigns.other_version_ids(engine, issue.key, issue.content_hash)),
        already_sent=current_counts(config, current).get(DeliveryStatus.SENT, 0) if current else 0,
        listed=listed,
        suppressed=suppressed,
        list_report=report,
    )


def open_campaign(
    engine: Engine, issue: Issue, resend: bool, on_edit: EditChoice
) -> tuple[CampaignRow, list[CampaignRow]]:
    """The campaign this run works on (new, resumed, or a --resend round) and edited predecessors."""
    current, latest = resumable(engine, issue, resend)
    earlier = campaigns.unfinished_other_versions(engine, issue.key, issue.content_hash)
    if earlier and on_edit == "abort":
        raise NewsletterError(
            f"issue {issue.key} was edited after a partial send of an earlier version; nothing sent "
            f"(choose to send the new version to the remaining subscribers or to everyone)"
        )
    if current is not None:
        return current, earlier
    round_ = latest.round + 1 if latest is not None else 1
    return campaigns.create_campaign(engine, issue.key, issue.content_hash, round_, issue.subject, issue.title), earlier
