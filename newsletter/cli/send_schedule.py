"""`send --digest`, `send --due` and `send ISSUE` before its send_at: what the schedule sends, by hand or by cron.

The work lives in digest/ (which run a moment belongs to, what is owed, sending it once); here are
the prompts and the lines printed. The campaign helpers (confirm, print_result) are send_cmds.py's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys

import click

from ..config import Config
from ..digest.cadence import cadence_for
from ..digest.clock import format_both, utc
from ..digest.due import Work, owed, send_due
from ..digest.feedpull import pull_feed, wanted
from ..digest.outcome import Outcome, count_articles
from ..digest.plan import DigestPlan, issue_for_digest, next_digest_plan
from ..digest.runner import send_digest
from ..digest.runs import run_for
from ..digest.upcoming import upcoming
from ..errors import NewsletterError
from ..send.campaign import stop_on_signals
from ..send.plan import Confirmed, EditChoice, confirmed, plan_campaign
from ..send.progress import reporter_for
from ..state.digests import record_for
from ..state.statuses import RunDecision
from . import ask, engine, run, warn
from .send_cmds import INTERRUPTED_EXIT, _send, accepted, confirm, print_result


def send_digest_now(config: Config, *, yes: bool, if_due: bool, dry_run: bool, now: dt.datetime) -> None:
    """`send --digest`: the digest `newsletter digest` shows (the run `now` belongs to), through send_digest.

    With --if-due (cron) only while that run is owed: its time came within catch_up and it was not
    settled. Without, an interrupted digest is finished first, and a digest sent before its run time
    stands for that run (the run then sends nothing more).
    """
    if config.schedule.mode != "digest":
        raise NewsletterError(
            '--digest: [schedule] mode is "each" (every run sends one article); use `newsletter send --due`'
        )
    this_run = run_for(config, now)
    if if_due and (this_run is None or not this_run.due):
        nxt = cadence_for(config).next_after(now)
        click.echo(f"no digest due (next run: {format_both(nxt) if nxt else 'never'})")
        return
    plan = next_digest_plan(config, now)
    if plan is None and not if_due:
        key = this_run.key if this_run is not None else "this run's digest"
        if this_run is not None and record_for(engine(config), this_run.key) is not None:
            click.echo(f"no digest to send: {key} was already sent")
        else:
            click.echo(f"no digest to send: nothing new for {key} (skip_if_empty)")
        return
    on_edit: EditChoice = "remaining"
    words = Confirmed()
    if plan is not None:
        issue = issue_for_digest(config, plan)
        count = count_articles(len(plan.articles))
        when = "interrupted earlier: resuming it" if plan.pending else _run_words(plan, now, dry_run=dry_run)
        click.echo(f"digest {plan.key}: {count} ({when})")
        if dry_run:
            for problem in plan.skipped:  # a real send says them as it goes
                warn(problem)
            print_result(run(_send(config, issue, resend=False, dry_run=True, on_edit="remaining")), "--digest")
            return
        send_plan = plan_campaign(config, issue, count=not yes)
        on_edit = confirm(send_plan, yes=yes, spec="--digest")
        words = accepted(send_plan, yes=yes)
    elif dry_run:
        return

    async def go() -> Outcome:
        stop = asyncio.Event()
        with stop_on_signals(stop):
            return await send_digest(
                config,
                now,
                run=this_run,
                stop=stop,
                reporter=reporter_for(sys.stderr),
                on_edit=on_edit,
                say=lambda line: click.echo(line, err=True),
            )

    with confirmed(words):  # what the prompt showed and the operator said yes to
        outcome = run(go())
    click.echo(outcome.message)
    if outcome.status == RunDecision.STOPPED:
        click.echo("run `newsletter send --digest` again to resume", err=True)
        sys.exit(INTERRUPTED_EXIT)
    if outcome.status == RunDecision.LOCKED:
        sys.exit(1)


def _run_words(plan: DigestPlan, now: dt.datetime, *, dry_run: bool) -> str:
    if plan.run is None:
        return "sent by hand"
    when = f"the run at {format_both(plan.run.time)}"
    if utc(plan.run.time) <= utc(now):
        return when
    ahead = "" if dry_run else ": sent now, it stands for that run, which sends nothing more"
    return f"{when}, still to come{ahead}"


def _say(line: str) -> None:
    """What the schedule did, on stdout; its warnings and errors on stderr (cron mails both)."""
    click.echo(line, err=line.startswith(("warning: ", "error: ")))


def send_due_now(config: Config, *, yes: bool, dry_run: bool, now: dt.datetime) -> None:
    """`send --due`: everything the schedule owes now (digest.due.send_due), for cron; the blog's feed
    is pulled first when a run is owed or `[feed] interval` has passed (a dry run writes nothing)."""
    feed_error = ""
    if wanted(config, now):
        feed_error = run(pull_feed(config, _say, dry_run=dry_run, now=now)).error
    owed_now = owed(config, now, feed_error)
    if not owed_now:
        nxt = upcoming(config, now, 1)[0]
        when = f"{nxt[0].what} at {format_both(nxt[0].when)}" if nxt else "nothing scheduled"
        click.echo(f"nothing due now (next: {when})")
    for description, issue in owed_now:
        click.echo(f"due: {description}")
        if dry_run and issue is not None:
            print_result(run(_send(config, issue, resend=False, dry_run=True, on_edit="remaining")), "--due")
    if dry_run:
        return
    sending = [issue for _description, issue in owed_now if issue is not None]
    if sending and not yes:
        ask(f"Send {'these' if len(sending) > 1 else 'it'} now?")

    async def go() -> Work:
        stop = asyncio.Event()
        with stop_on_signals(stop):
            return await send_due(
                config, now, stop=stop, reporter=reporter_for(sys.stderr), say=_say, feed_error=feed_error
            )

    work = run(go())
    if any(o.status == RunDecision.STOPPED for o in work.outcomes):
        click.echo("run `newsletter send --due` again to resume", err=True)
        sys.exit(INTERRUPTED_EXIT)
    if work.errors or any(o.status == RunDecision.LOCKED for o in work.outcomes):
        sys.exit(1)
