"""Before a send: which campaign a run works on (new, resumed, a --resend round), and the prompt's plan.

An issue counts as sent once any version of it finished: editing a sent article does not send it
again; only --resend does. Nothing here writes, except `open_campaign`, which the run calls under
the issue's lock.

A list that looks wrong is not sent to without the operator's word (`--allow-shrink`, or yes at the
prompt): the CSV lost more than a fifth of its rows at once (the sync held them), more than a small
share of its rows is invalid, or the audience is more than a fifth smaller than the campaign it
resumes or the last campaign to the same audience. Nor is a database that forgot earlier sends
(send/lost.py, `--accept-new-state`). Scheduled sends (`--digest`, `--due`) get the same words
through `confirmed` rather than a parameter in every layer of the schedule.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import Engine

from ..config import Config
from ..content.issue import Issue
from ..content.listsync import SyncResult, shrinks_too_much
from ..content.subscribers import ListReport
from ..errors import AlreadySent, NewsletterError
from ..render.lint import list_send_errors
from ..render.unsubscribe import require_secret_for_list
from ..state import audience, campaigns, deliveries
from ..state.campaigns import CampaignRow
from ..state.engine import engine_for
from ..state.statuses import CampaignStatus, DeliveryStatus, SubscriberSource
from ..state.subscribers import count_by
from .audience import check_audience, describe, other_sends, sync_list
from .lost import first_send_note, lost_state
from .preflight import require_ready
from .recording import current_counts
from .transports import describe_transport
from .verp import verp_for

EditChoice = Literal["remaining", "all", "abort"]
INVALID_SHARE = 0.01  # a list with more than 1% invalid rows (and more than INVALID_MIN) is not sent to
INVALID_MIN = 5


@dataclass(frozen=True)
class Confirmed:
    """What the operator said yes to, beyond the send itself."""

    shrink: bool = False  # a list that looks much smaller, or too many invalid rows
    new_state: bool = False  # a state database with no record of earlier sends


_confirmed: ContextVar[Confirmed | None] = ContextVar("confirmed", default=None)


@contextmanager
def confirmed(words: Confirmed) -> Iterator[None]:
    """Every send started inside (the digest's, `send --due`'s) takes these confirmations too."""
    outer = _confirmed.get() or Confirmed()
    token = _confirmed.set(Confirmed(words.shrink or outer.shrink, words.new_state or outer.new_state))
    try:
        yield
    finally:
        _confirmed.reset(token)


def confirmations(shrink: bool = False, new_state: bool = False) -> Confirmed:
    """This call's own words, plus whatever the surrounding `confirmed` block said."""
    outer = _confirmed.get() or Confirmed()
    return Confirmed(shrink or outer.shrink, new_state or outer.new_state)


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
    list_problems: list[str] = field(default_factory=list)  # what needs --allow-shrink (list_problems())
    lost: str = ""  # the state database forgot earlier sends (send/lost.py)
    first_send: str = ""  # the database records no send yet: said in the prompt

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


Reference = tuple[str, int] | None  # (what it is, its audience size): what a list's size is held against


def reference_for(engine: Engine, issue: Issue, current: CampaignRow | None) -> Reference:
    """(what it is, its audience size): the campaign a run resumes, else the last one to the same audience."""
    if current is not None:
        return "the campaign it resumes", deliveries.audience_size(engine, current.id)
    suffix = issue.campaign_key[len(issue.key) :]
    audience = suffix.partition("@")[1:]
    for campaign in campaigns.campaigns_for(engine):
        if campaign.status != CampaignStatus.SUPERSEDED and campaign.key.partition("@")[1:] == audience:
            return f"the last campaign ({campaign.key})", deliveries.audience_size(engine, campaign.id)
    return None


def list_problems(engine: Engine, issue: Issue, synced: SyncResult, reference: Reference) -> list[str]:
    """What makes this list look wrong for a send (each one line); empty when it looks right."""
    problems = []
    if synced.held:
        problems.append(synced.held_message())
    report = synced.report
    if report.invalid > INVALID_MIN and report.invalid > report.rows * INVALID_SHARE:
        problems.append(
            f"{report.invalid:,} of the {report.rows:,} rows of {report.path} are invalid (lines "
            f"{report.lines_text()}; `newsletter subscribers check` lists them) and would not get it"
        )
    if reference is not None:
        what, before = reference
        listed, suppressed = audience.counts(engine, issue.audience)
        now = listed - suppressed
        if shrinks_too_much(before, now):
            problems.append(
                f"the audience has {now:,} recipients, {1 - now / before:.0%} fewer than the {before:,} of {what}"
            )
    return problems


def streamed_list_problems(engine: Engine, csv_lines: int, reference: Reference) -> list[str]:
    """Before a streamed send (the CSV not read yet): a list that is too small even if every line of the
    file were a new address (a file cut short, a header only). The rest is checked once it is read."""
    if reference is None:
        return []
    what, before = reference
    by_source = count_by(engine, "source")
    at_most = csv_lines + sum(n for source, n in by_source.items() if source != SubscriberSource.CSV)
    if not shrinks_too_much(before, at_most):
        return []
    return [
        f"the list has at most {at_most:,} recipients ({csv_lines:,} lines in the file), "
        f"{1 - at_most / before:.0%} fewer than the {before:,} of {what}"
    ]


def refuse_unconfirmed(problems: list[str], lost: str, words: Confirmed) -> None:
    """The run's own check (with --yes nothing asked before it): one line, exit status 2."""
    if lost and not words.new_state:
        raise NewsletterError(f"{lost}; nothing was sent")
    if problems and not words.shrink:
        raise NewsletterError(
            f"{'; '.join(problems)}; nothing was sent: fix the list, or if it is right, send with --allow-shrink"
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
    problems: list[str] = []
    if count:  # syncs the CSV once more than the run does: --yes skips it
        synced = sync_list(config, engine)
        report = synced.report
        check_audience(config, engine, issue)
        problems = list_problems(engine, issue, synced, reference_for(engine, issue, current))
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
        list_problems=problems,
        lost=lost_state(config, engine, issue),
        first_send=first_send_note(config, engine),
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
    made = campaigns.create_campaign(
        engine, key, issue.content_hash, round_, issue.subject, issue.title, _message_key(engine, key, earlier, on_edit)
    )
    return made, earlier


def _message_key(engine: Engine, key: str, earlier: list[CampaignRow], on_edit: EditChoice) -> str:
    """Message-IDs per campaign and recipient, not per version: an edited issue sent to those still waiting
    keeps the earlier version's (the copy a crash duplicated is then dropped by the receiver); the first
    campaign of an issue has its key; a --resend, or an edit sent to everyone, new ones (it is a new message)."""
    if earlier and on_edit == "remaining":
        return max(earlier, key=lambda c: c.id).message_key
    sent_before = len(campaigns.campaigns_for(engine, key))
    return key if not sent_before else f"{key}:r{sent_before + 1}"
