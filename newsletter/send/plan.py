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
from ..content.subscribers import ListReport
from ..errors import AlreadySent, NewsletterError
from ..render.lint import list_send_errors
from ..render.unsubscribe import require_secret_for_list
from ..state import audience, campaigns, deliveries
from ..state.campaigns import CampaignRow
from ..state.engine import engine_for
from ..state.statuses import CampaignStatus, DeliveryStatus
from .audience import check_audience, describe, other_sends, sync_list
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
    listed: int | None  # active subscribers in the audience (None when not counted)
    suppressed: int | None
    list_report: ListReport | None = None  # the CSV sync's findings: `skipped_message()` for the prompt
    received_elsewhere: int = 0  # of the audience, got this issue in a send to another audience

    @property
    def resuming(self) -> bool:
        return self.campaign is not None and self.campaign.status != CampaignStatus.FINISHED

    @property
    def recipients(self) -> int | None:
        if self.listed is None or self.suppressed is None:
            return None
        return max(0, self.listed - self.suppressed - self.already_sent - self.received_elsewhere)

    @property
    def audience(self) -> str:
        return describe(self.issue)


def check_sendable(config: Config, issue: Issue, *, dry_run: bool = False) -> None:
    """Refuse what must not go to the list: a draft, broken links, a set-up `newsletter doctor` calls wrong."""
    if issue.draft:
        where = ", ".join(str(a.path) for a in issue.articles if a.draft)
        raise NewsletterError(
            f"{where}: is a draft (draft: true); remove that line to send it to the list, "
            f"or use `newsletter send-test` to try it"
        )
    for problem in list_send_errors(issue, config.newsletter.base_url):
        raise NewsletterError(problem)
    require_secret_for_list(config)
    verp_for(config)  # a bounce address needs the secret its tokens are signed with
    if not dry_run:  # an example From or postal address, a DKIM key that cannot sign...
        require_ready(config, f"{issue.key} to the list over SMTP")


def resumable(engine: Engine, issue: Issue, resend: bool) -> tuple[CampaignRow | None, CampaignRow | None]:
    """(the campaign a run resumes: this version, still sending; this version's latest campaign)."""
    latest = campaigns.latest_campaign(engine, issue.campaign_key, issue.content_hash)
    if latest is not None and latest.status == CampaignStatus.SENDING:
        return latest, latest
    finished = campaigns.finished_campaign(engine, issue.campaign_key)
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
    key = issue.campaign_key
    earlier = campaigns.unfinished_other_versions(engine, key, issue.content_hash)
    listed = suppressed = None
    report = None
    elsewhere = 0
    if count:  # syncs the CSV once more than the run does: --yes skips it
        report = sync_list(config, engine).report
        check_audience(config, engine, issue)
        listed, suppressed = audience.counts(engine, issue.audience)
        if not resend:
            elsewhere = audience.count_received(engine, issue.audience, other_sends(engine, issue))
    return Plan(
        issue=issue,
        backend=describe_transport(config),
        campaign=current,
        earlier_versions=earlier,
        earlier_sent=deliveries.sent_count(engine, campaigns.other_version_ids(engine, key, issue.content_hash)),
        already_sent=current_counts(config, current).get(DeliveryStatus.SENT, 0) if current else 0,
        listed=listed,
        suppressed=suppressed,
        list_report=report,
        received_elsewhere=elsewhere,
    )


def open_campaign(
    engine: Engine, issue: Issue, resend: bool, on_edit: EditChoice
) -> tuple[CampaignRow, list[CampaignRow]]:
    """The campaign this run works on (new, resumed, or a --resend round) and edited predecessors."""
    current, latest = resumable(engine, issue, resend)
    key = issue.campaign_key
    earlier = campaigns.unfinished_other_versions(engine, key, issue.content_hash)
    if earlier and on_edit == "abort":
        raise NewsletterError(
            f"issue {key} was edited after a partial send of an earlier version; nothing sent "
            f"(choose to send the new version to the remaining subscribers or to everyone)"
        )
    if current is not None:
        return current, earlier
    round_ = latest.round + 1 if latest is not None else 1
    return campaigns.create_campaign(engine, key, issue.content_hash, round_, issue.subject, issue.title), earlier
