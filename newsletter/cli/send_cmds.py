"""`send` and `status`: campaigns to the whole list (issue 4).

`send` is three steps: choose the issue, confirm (the only place that prompts), run the campaign.
"""

from __future__ import annotations

import asyncio
import sys

import click

from .. import store
from ..campaign import CampaignResult, CampaignStopped, EditChoice, Plan, plan_campaign, run_campaign
from ..config import Config
from ..content import Issue, issue_for, resolve_article
from ..db import engine_for
from ..progress import reporter_for
from . import State, app, pass_state, run

INTERRUPTED_EXIT = 130


def choose_issue(config: Config, spec: str) -> Issue:
    """ISSUE on the command line -> the Issue to send (a `--digest` option can plug in here)."""
    return issue_for(resolve_article(spec, config.path("issues")))


def confirm(plan: Plan, *, yes: bool, spec: str) -> EditChoice:
    """Show what is about to happen and ask; returns what to do about an edited issue."""
    issue = plan.issue
    on_edit: EditChoice = "remaining"
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
                raise click.Abort()
    if yes:
        return on_edit
    recipients = f"{plan.recipients:,}" if plan.recipients is not None else "?"
    details = []
    if plan.suppressed:
        details.append(f"{plan.suppressed:,} suppressed")
    if plan.resuming:
        details.append(f"resuming: {plan.already_sent:,} already sent")
    if plan.earlier_versions and on_edit == "remaining":
        details.append(f"minus up to {plan.earlier_sent:,} who got the earlier version")
    click.echo(f"title:      {issue.title}")
    click.echo(f"subject:    {issue.subject}")
    click.echo(f"recipients: {recipients}" + (f" ({', '.join(details)})" if details else ""))
    click.echo(f"backend:    {plan.backend}")
    click.confirm(f"Send {issue.key} now?", abort=True)
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
    elif result.finished:
        click.echo(f"campaign {result.key} finished")
    elif result.remaining and not result.stopped:
        click.echo(
            f"{result.remaining:,} deferred (temporary failures); run `newsletter send {spec}` again later "
            f"to retry them; `newsletter status {spec}` shows the replies",
            err=True,
        )


async def _send(config: Config, issue: Issue, *, resend: bool, dry_run: bool, on_edit: EditChoice) -> CampaignResult:
    stop = asyncio.Event()
    return await run_campaign(
        config,
        issue,
        resend=resend,
        dry_run=dry_run,
        on_edit=on_edit,
        stop=stop,
        reporter=reporter_for(sys.stderr),
        handle_signals=True,
    )


@app.command()
@click.argument("issue")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Render every message and count; deliver nothing, record nothing.")
@click.option("--resend", is_flag=True, help="Send a finished campaign to the whole list again.")
@pass_state
def send(state: State, issue: str, yes: bool, dry_run: bool, resend: bool) -> None:
    """Send ISSUE to every subscriber (resumes an interrupted send; never sends anyone two copies).

    ISSUE is a path, a slug or `latest`.
    """
    config = state.config
    chosen = choose_issue(config, issue)
    on_edit: EditChoice = "remaining"
    if not dry_run:
        plan = plan_campaign(config, chosen, resend=resend, count=not yes)
        on_edit = confirm(plan, yes=yes, spec=issue)
    try:
        result = run(_send(config, chosen, resend=resend, dry_run=dry_run, on_edit=on_edit))
    except CampaignStopped as exc:
        print_result(exc.result, issue)
        raise
    print_result(result, issue)
    if result.interrupted:
        sys.exit(INTERRUPTED_EXIT)


@app.command()
@click.argument("issue", required=False)
@pass_state
def status(state: State, issue: str | None) -> None:
    """Campaigns with their counts and last errors (all, or one ISSUE's)."""
    config = state.config
    engine = engine_for(config)
    key = None
    if issue is not None:
        key = issue if store.campaigns_for(engine, issue) else choose_issue(config, issue).key
    rows = store.campaigns_for(engine, key)
    if not rows:
        click.echo(f"no campaign for {key} yet" if key else "no campaigns yet")
        return
    for c in rows:
        counts = store.status_counts(engine, c.id)
        total = sum(counts.values())
        parts = ", ".join(
            f"{counts.get(s, 0):,} {s}"
            for s in (store.SENT, store.FAILED, store.DEFERRED, store.PENDING, store.SKIPPED)
            if counts.get(s, 0) or s == store.SENT
        )
        round_ = f" (resend {c.round - 1})" if c.round > 1 else ""
        click.echo(
            f"{c.key} [{c.content_hash}]{round_}: {c.status}; {parts} of {total:,}; "
            f"{c.runs} run(s), last {c.updated_at:%Y-%m-%d %H:%M} UTC"
        )
        holder = store.lock_holder(engine, c.key)
        if holder and c.status == store.SENDING:
            click.echo(f"  being sent now by pid {holder[1]} on {holder[0]}")
        for email, state_, reply in store.last_errors(engine, c.id, 5 if key else 2):
            click.echo(f"  {state_} {email}: {reply}")
