"""`send` and `status`: campaigns to the whole list.

`send` is three steps: choose the issue, confirm (the only place that prompts), run the campaign.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys

import click

from ..config import Config
from ..content.articles import resolve_article
from ..content.issue import Issue, issue_for
from ..content.names import normalize_tag
from ..digest.clock import format_both, utc
from ..errors import CampaignStopped, Declined, NewsletterError
from ..send.campaign import run_campaign
from ..send.plan import Confirmed, EditChoice, Plan, confirmed, plan_campaign
from ..send.progress import reporter_for
from ..send.recording import current_counts
from ..send.result import CampaignResult
from ..state import campaigns, deliveries
from ..state.bounces import CampaignBounces
from ..state.bounces import campaign_counts as bounce_counts
from ..state.campaigns import lock_name
from ..state.lock import Lock
from ..state.statuses import CampaignStatus, DeliveryStatus
from . import State, app, ask, engine, pass_state, run, warn_about_setup
from .clock import NOW_HELP, make_clock

INTERRUPTED_EXIT = 130


def choose_issue(config: Config, spec: str, tags: tuple[str, ...] = ()) -> Issue:
    """ISSUE on the command line -> the Issue to send; `tags` (--tag) replace the front matter's audience."""
    clean = []
    for tag in tags:
        try:
            clean.append(normalize_tag(tag))
        except ValueError as exc:
            raise NewsletterError(f"--tag: {exc}") from None
    audience = tuple(dict.fromkeys(t for t in clean if t)) or None
    return issue_for(resolve_article(spec, config.path("issues")), audience)


def accepted(plan: Plan, *, yes: bool) -> Confirmed:
    """What answering yes at the prompt (which showed them) confirmed; nothing with --yes, which shows nothing."""
    return Confirmed(False, False) if yes else Confirmed(bool(plan.list_problems), bool(plan.lost))


def confirm(plan: Plan, *, yes: bool, spec: str) -> EditChoice:
    """Show what is about to happen and ask; returns what to do about an edited issue."""
    issue = plan.issue
    on_edit: EditChoice = "remaining"
    if not yes:
        for problem in ([plan.lost] if plan.lost else []) + plan.list_problems:
            click.echo(f"warning: {problem}")
        if plan.first_send and not plan.lost:
            click.echo(f"note: {plan.first_send}")
    if plan.earlier_versions:
        where = f"{plan.earlier_sent:,} subscribers already received an earlier version"
        if yes:
            click.echo(
                f"note: {issue.key} was edited after a partial send ({where}); --yes picks the safe choice: "
                f"this version goes only to those who have not received the earlier one (no one gets two)",
                err=True,
            )
        else:
            click.echo(f"{issue.key} was edited after a partial send: {where}.")
            click.echo("  remaining: send this version only to those who have not received it (no one gets two)")
            click.echo("  all:       send this version to everyone on the list (some get both)")
            click.echo("  abort:     send nothing")
            on_edit = click.prompt("What to do?", type=click.Choice(["remaining", "all", "abort"]), default="remaining")
            if on_edit == "abort":
                raise Declined("abort chosen at the prompt; nothing was sent")
    if yes:
        return on_edit
    recipients = f"{plan.recipients:,}" if plan.recipients is not None else "?"
    details = []
    if plan.received_elsewhere:
        details.append(f"{plan.received_elsewhere:,} got it in another send")
    if plan.suppressed:
        details.append(f"{plan.suppressed:,} suppressed")
    if plan.resuming:
        details.append(f"resuming: {plan.already_sent:,} already sent")
    if plan.earlier_versions and on_edit == "remaining":
        details.append(f"minus up to {plan.earlier_sent:,} who got the earlier version")
    click.echo(f"title:      {issue.title}")
    click.echo(f"subject:    {issue.subject}")
    click.echo(f"audience:   {plan.audience}")
    click.echo(f"recipients: {recipients}" + (f" ({', '.join(details)})" if details else ""))
    click.echo(f"backend:    {plan.backend}")
    if plan.list_report is not None and plan.list_report.invalid:
        click.echo(f"list:       {plan.list_report.skipped_message()}")
    anyway = " anyway" if plan.lost or plan.list_problems else ""
    ask(f"Send {issue.campaign_key} now{anyway}?")
    return on_edit


def summary_line(result: CampaignResult) -> str:
    return (
        f"sent {result.sent:,}, failed permanently {result.failed:,}, deferred {result.deferred:,}, "
        f"skipped {result.skipped:,}; {result.elapsed:.1f}s, {result.rate:,.0f} msg/s"
    )


def print_result(result: CampaignResult, spec: str) -> None:
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.dry_run:
        click.echo(
            f"dry run: {result.to_send:,} messages rendered ({result.bytes_total / 1e6:,.1f} MB), "
            f"{result.skipped:,} suppressed, {result.already_sent:,} already sent, {result.failed:,} unsendable; "
            f"nothing delivered ({result.elapsed:.1f}s)"
        )
        return
    click.echo(summary_line(result))
    if result.already_sent:
        click.echo(f"({result.already_sent:,} were sent by earlier runs of this campaign)")
    if result.interrupted:
        click.echo(
            f"interrupted: {result.remaining:,} not sent yet; run `newsletter send {spec}` again to resume",
            err=True,
        )
    elif result.stopped:
        click.echo(
            f"{result.remaining:,} not sent yet; once that is fixed, run `newsletter send {spec}` again to resume "
            f"(`newsletter status {spec}` shows the replies)",
            err=True,
        )
    elif result.finished:
        click.echo(f"campaign {result.key} finished")
    elif result.remaining and not result.stopped:
        click.echo(
            f"{result.remaining:,} deferred (temporary failures); run `newsletter send {spec}` again later "
            f"to retry them; `newsletter status {spec}` shows the replies",
            err=True,
        )


async def _send(
    config: Config, issue: Issue, *, resend: bool, dry_run: bool, on_edit: EditChoice, words: Confirmed | None = None
) -> CampaignResult:
    stop = asyncio.Event()
    words = words or Confirmed()
    return await run_campaign(
        config,
        issue,
        resend=resend,
        dry_run=dry_run,
        on_edit=on_edit,
        stop=stop,
        reporter=reporter_for(sys.stderr),
        handle_signals=True,
        allow_shrink=words.shrink,
        accept_new_state=words.new_state,
    )


@app.command()
@click.argument("issue", required=False)
@click.option("--digest", "as_digest", is_flag=True, help="Send the next digest (the one `newsletter digest` shows).")
@click.option("--if-due", is_flag=True, help="With --digest: only while its run is owed (for cron).")
@click.option("--due", is_flag=True, help="Send what the schedule owes now (for cron).")
@click.option("--ignore-send-at", is_flag=True, help="Send an article before its send_at (the schedule then skips it).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Render every message and count; deliver nothing, record nothing.")
@click.option("--resend", is_flag=True, help="Send a finished campaign to the whole list again.")
@click.option(
    "--tag", "tags", multiple=True, help="Only subscribers with this tag (repeatable: any of them); its own campaign."
)
@click.option(
    "--allow-shrink",
    is_flag=True,
    help="Send although the list looks much smaller than before or has many invalid rows (say so with --yes).",
)
@click.option(
    "--accept-new-state",
    is_flag=True,
    help="Send although the state database has no record of earlier sends that happened (starting over).",
)
@click.option("--now", "now_text", metavar="TIME", default=None, help=NOW_HELP)
@pass_state
def send(
    state: State,
    issue: str | None,
    as_digest: bool,
    if_due: bool,
    due: bool,
    ignore_send_at: bool,
    yes: bool,
    dry_run: bool,
    resend: bool,
    tags: tuple[str, ...],
    allow_shrink: bool,
    accept_new_state: bool,
    now_text: str | None,
) -> None:
    """Send ISSUE to every subscriber (resumes an interrupted send; never sends anyone two copies).

    ISSUE is a path, a slug or `latest`; or --digest for the next digest; or --due for whatever the
    schedule owes now. With --tag (or front matter `audience: [tag, ...]`) only subscribers with any
    of those tags; nobody gets an issue twice, whichever audiences it is sent to. A list that looks
    much smaller than the last campaign's, or a state database that forgot earlier sends, is refused
    with --yes unless --allow-shrink or --accept-new-state says it is right.
    """
    config = state.config
    warn_about_setup(config)
    now = make_clock(config, now_text).now()
    with confirmed(Confirmed(allow_shrink, accept_new_state)):
        _send_command(config, issue, as_digest, if_due, due, ignore_send_at, yes, dry_run, resend, tags, now)


def _send_command(
    config: Config,
    issue: str | None,
    as_digest: bool,
    if_due: bool,
    due: bool,
    ignore_send_at: bool,
    yes: bool,
    dry_run: bool,
    resend: bool,
    tags: tuple[str, ...],
    now: dt.datetime,
) -> None:
    if as_digest or due:
        from .send_schedule import send_digest_now, send_due_now  # the scheduler's modules, loaded for these only

        if as_digest and due:
            raise NewsletterError("--digest and --due: not both; --due sends the digest too when it is owed")
        if issue is not None or resend or tags:
            what = "--digest sends the digest of the period" if as_digest else "--due sends what the schedule owes"
            raise NewsletterError(f"{what} to everyone: no ISSUE, no --resend, no --tag")
        if due:
            send_due_now(config, yes=yes, dry_run=dry_run, now=now)
        else:
            send_digest_now(config, yes=yes, if_due=if_due, dry_run=dry_run, now=now)
        return
    if if_due:
        raise NewsletterError("--if-due goes with --digest (newsletter send --digest --if-due --yes)")
    if issue is None:
        raise NewsletterError("send needs ISSUE (a path, a slug or `latest`), --digest or --due")
    chosen = choose_issue(config, issue, tags)
    if not dry_run:
        check_send_at(config, chosen, yes=yes, ignore=ignore_send_at, now=now)
    on_edit: EditChoice = "remaining"
    words = Confirmed()
    if not dry_run:
        plan = plan_campaign(config, chosen, resend=resend, count=not yes)
        on_edit = confirm(plan, yes=yes, spec=issue)
        words = accepted(plan, yes=yes)
    try:
        result = run(_send(config, chosen, resend=resend, dry_run=dry_run, on_edit=on_edit, words=words))
    except CampaignStopped as exc:
        print_result(exc.result, issue)
        raise
    print_result(result, issue)
    if result.interrupted:
        sys.exit(INTERRUPTED_EXIT)


# Gmail's and Yahoo's bulk-sender rules: keep spam complaints under 0.3% of what was delivered.
COMPLAINT_LIMIT = 0.003


def bounce_line(found: CampaignBounces, sent: int) -> str:
    """A campaign's bounces and complaints (addresses) with their share of the messages sent."""

    def rate(n: int) -> str:
        return f"{n / sent:.2%}" if sent else "-"

    line = (
        f"bounced {found.bounced:,} ({rate(found.bounced)}; {found.hard:,} hard, {found.soft:,} soft), "
        f"complained {found.complained:,} ({rate(found.complained)})"
    )
    if sent and found.complained / sent > COMPLAINT_LIMIT:
        line += f": over the {COMPLAINT_LIMIT:.1%} Gmail and Yahoo allow bulk senders"
    return line


@app.command()
@click.argument("issue", required=False)
@pass_state
def status(state: State, issue: str | None) -> None:
    """Campaigns with their counts and last errors (all, or one ISSUE's)."""
    config = state.config
    db = engine(config)
    key = None
    if issue is not None:
        key = issue if campaigns.campaigns_for(db, issue) else choose_issue(config, issue).key
    # An issue's campaigns include its sends to other audiences (<slug>@<tags>).
    rows = [c for c in campaigns.campaigns_for(db) if key is None or c.key == key or c.key.startswith(f"{key}@")]
    if not rows:
        click.echo(f"no campaign for {key} yet" if key else "no campaigns yet")
        return
    returned = bounce_counts(db, [c.id for c in rows])
    for c in rows:
        counts = current_counts(config, c)  # the database plus a running or killed send's journal
        total = sum(counts.values())
        parts = ", ".join(
            f"{counts.get(s, 0):,} {s}"
            for s in (
                DeliveryStatus.SENT,
                DeliveryStatus.FAILED,
                DeliveryStatus.DEFERRED,
                DeliveryStatus.PENDING,
                DeliveryStatus.SKIPPED,
            )
            if counts.get(s, 0) or s == DeliveryStatus.SENT
        )
        round_ = f" (resend {c.round - 1})" if c.round > 1 else ""
        click.echo(
            f"{c.key} [{c.content_hash}]{round_}: {c.status}; {parts} of {total:,}; "
            f"{c.runs} run(s), last {c.updated_at:%Y-%m-%d %H:%M} UTC"
        )
        if c.id in returned:
            click.echo(f"  {bounce_line(returned[c.id], counts.get(DeliveryStatus.SENT, 0))}")
        holder = Lock(db, lock_name(c.key.split("@")[0])).holder()
        if holder and c.status == CampaignStatus.SENDING:
            click.echo(f"  being sent now by pid {holder.pid} on {holder.host}")
        for email, state_, reply in deliveries.last_errors(db, c.id, 5 if key else 2):
            click.echo(f"  {state_} {email}: {reply}")


def check_send_at(config: Config, issue: Issue, *, yes: bool, ignore: bool, now: dt.datetime) -> None:
    """An article scheduled for later: ask (refuse with --yes) unless --ignore-send-at."""
    when = issue.article.send_time(config.schedule.timezone)
    if ignore or when is None or utc(when) <= utc(now):
        return
    scheduled = f"{issue.article.path}: scheduled for {format_both(when)} (send_at)"
    if yes:
        raise NewsletterError(f"{scheduled}; the scheduler sends it then: to send it now anyway add --ignore-send-at")
    ask(f"{scheduled}; send it now anyway?")
