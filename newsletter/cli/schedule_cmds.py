"""`digest` and `schedule`: the weekly digest.

The work lives in digest/ (what a digest holds, when it runs, sending it once); these commands only
parse options and print. `--now`/`--now-at` are hidden: tests use them to pretend a time so a run is
seconds away instead of days.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys

import click

from ..config import Config
from ..digest.clock import Clock, format_both
from ..digest.cron import crontab_for
from ..digest.plan import due_run, issue_for_digest, plan_digest
from ..digest.runner import DigestRunner
from ..digest.scheduler import DigestScheduler
from ..errors import NewsletterError
from ..state.digests import record_for
from . import State, app, engine, pass_state


def _parse_moment(text: str, option: str, tz: dt.tzinfo) -> dt.datetime:
    """YYYY-MM-DD or an ISO date-time; without an offset it is read in the schedule's zone."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise NewsletterError(f"{option}: {text!r} is not a date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)


def make_clock(config: Config, now: str | None, now_at: float | None = None) -> Clock:
    """The real clock, or (hidden --now, for tests) one that pretends a time."""
    tz = config.schedule.timezone
    if now is None:
        return Clock(tz)
    return Clock.pretending(tz, _parse_moment(now, "--now", tz), now_at)


@app.command()
@click.option("--since", metavar="DATE", default=None, help="Start the window here instead of at the previous digest.")
@click.option("--now", "now_text", hidden=True, default=None)
@pass_state
def digest(state: State, since: str | None, now_text: str | None) -> None:
    """Show what the next digest would hold (titles, dates), without sending it."""
    config = state.config
    now = make_clock(config, now_text, None).now()
    since_at = _parse_moment(since, "--since", config.schedule.timezone) if since else None
    run_time = due_run(config, now) or crontab_for(config).next_after(now)
    plan = plan_digest(config, now, since=since_at, run_time=run_time)
    existing = record_for(engine(config), plan.key)
    when = format_both(run_time) if run_time else "never (the crontab has no future date)"
    click.echo(f"next digest: {plan.period}, {'due now' if run_time and run_time <= now else 'at'} {when}")
    if existing is not None:
        click.echo(f"  (digest {plan.period} was already sent; these articles wait for the next period)")
    click.echo(f"window: {plan.since:%Y-%m-%d %H:%M} to {plan.until:%Y-%m-%d %H:%M %Z} (articles published so far)")
    if not plan.articles:
        action = "skipped (skip_if_empty)" if config.schedule.skip_if_empty else "sent with no articles"
        click.echo(f"nothing new: the digest would be {action}")
        return
    click.echo(f"subject: {issue_for_digest(config, plan).subject}")
    for article in plan.articles:
        click.echo(f"  {article.date:%Y-%m-%d}  {article.title}  ({article.slug})")
    click.echo(f"{len(plan.articles)} article{'s' if len(plan.articles) != 1 else ''}")


class _ClockFormatter(logging.Formatter):
    """Log lines stamped with the scheduler's clock (the pretended one in tests)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__("%(asctime)s %(message)s")
        self.clock = clock

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.clock.now().strftime("%Y-%m-%d %H:%M:%S %Z")


def _logging(clock: Clock) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ClockFormatter(clock))
    logger = logging.getLogger("newsletter.schedule")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # APScheduler's own chatter ("Added job", "Running job") says nothing our lines do not.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler


@app.command()
@click.option("--next", "count", type=click.IntRange(min=1), default=None, help="Print the next N run times and exit.")
@click.option("--now", "now_text", hidden=True, default=None)
@click.option("--now-at", "now_at", type=float, hidden=True, default=None)
@click.option("--max-runs", "max_runs", type=click.IntRange(min=1), hidden=True, default=None)
@pass_state
def schedule(state: State, count: int | None, now_text: str | None, now_at: float | None, max_runs: int | None) -> None:
    """Run the digest scheduler in the foreground (stop with Ctrl-C or SIGTERM).

    Sends each period's digest once, at the [schedule] cron time; catches up a missed run within
    catch_up; resumes an interrupted send on start.
    """
    config = state.config
    clock = make_clock(config, now_text, now_at)
    if count is not None:
        for run in crontab_for(config).runs(clock.now(), count):
            click.echo(f"{run:%a %Y-%m-%d %H:%M %Z}   {run.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC")
        return
    handler = _logging(clock)
    try:
        engine(config)  # created or upgraded before the first run, said in one line
        scheduler = DigestScheduler(config, DigestRunner(config), clock, max_runs=max_runs)
        asyncio.run(scheduler.serve())
    finally:
        logging.getLogger("newsletter.schedule").removeHandler(handler)
