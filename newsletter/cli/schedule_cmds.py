"""`digest` and `schedule`: what the schedule will send, and the scheduler itself.

The work lives in digest/ (which run a moment belongs to, what a digest holds, sending once); these
commands only parse options and print. `--now TIME` pretends the time is TIME (a testing aid: see
what the digest of a given day holds, or let a run come in seconds instead of days); `--now-at`,
`--max-runs` and `--feed-retry` are hidden, for tests that start real scheduler processes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys

import click

from ..config import Config
from ..digest.clock import Clock, format_both
from ..digest.outcome import count_articles
from ..digest.plan import issue_for_digest, plan_digest
from ..digest.runs import run_for
from ..digest.scheduler import Scheduler
from ..digest.upcoming import upcoming
from ..state.digests import record_for
from . import State, app, engine, pass_state, warn
from .clock import NOW_HELP, make_clock, parse_moment


@app.command()
@click.option("--since", metavar="DATE", default=None, help="Start the window here instead of at the previous digest.")
@click.option("--now", "now_text", metavar="TIME", default=None, help=NOW_HELP)
@pass_state
def digest(state: State, since: str | None, now_text: str | None) -> None:
    """Show what the next digest would hold (its key, run, subject, articles), without sending it."""
    config = state.config
    if config.schedule.mode != "digest":
        click.echo(
            'no digests: [schedule] mode is "each" (every run sends one article); '
            "`newsletter schedule --next 5` lists what comes"
        )
        return
    now = make_clock(config, now_text).now()
    since_at = parse_moment(since, "--since", config.schedule.timezone) if since else None
    run = run_for(config, now)
    plan = plan_digest(config, now, run, since=since_at)
    for problem in plan.skipped:
        warn(problem)
    if run is None:
        click.echo(f"next digest: {plan.key}, never scheduled (the crontab has no future date)")
    else:
        click.echo(f"next digest: {plan.key}, {'due now: the run at' if run.due else 'at'} {format_both(run.time)}")
    if record_for(engine(config), plan.key) is not None:
        click.echo(f"  ({plan.key} was already sent; these articles wait for the next run)")
    click.echo(f"window: {plan.since:%Y-%m-%d %H:%M} to {plan.until:%Y-%m-%d %H:%M %Z} (articles published so far)")
    if not plan.articles:
        action = "skipped (skip_if_empty)" if config.schedule.skip_if_empty else "sent with no articles"
        click.echo(f"nothing new: the digest would be {action}")
        return
    click.echo(f"subject: {issue_for_digest(config, plan).subject}")
    for article in plan.articles:
        click.echo(f"  {article.date:%Y-%m-%d}  {article.title}  ({article.slug})")
    click.echo(count_articles(len(plan.articles)))


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
    # APScheduler's own chatter ("Added job", "Running job", a fire skipped while the previous one
    # still sends) says nothing our lines do not: what is owed is decided from the state database.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    return handler


def print_upcoming(config: Config, now: dt.datetime, count: int) -> None:
    """`schedule --next N`: one line per send to come, with what it would hold."""
    items, broken = upcoming(config, now, count)
    for problem in broken:
        warn(problem)
    if not items:
        click.echo("nothing scheduled (the crontab has no future date and no article has a send_at to come)")
    for item in items:
        local = item.when.astimezone(config.schedule.timezone)
        utc = item.when.astimezone(dt.UTC)
        due = " (due now)" if item.due else ""
        click.echo(f"{local:%a %Y-%m-%d %H:%M %Z}   {utc:%Y-%m-%d %H:%M} UTC   {item.what}{due}: {item.holds}")


@app.command()
@click.option(
    "--next",
    "count",
    type=click.IntRange(min=1),
    default=None,
    help="List the next N sends (what each holds) and exit.",
)
@click.option("--now", "now_text", metavar="TIME", default=None, help=NOW_HELP)
@click.option("--now-at", "now_at", type=float, hidden=True, default=None)
@click.option("--max-runs", "max_runs", type=click.IntRange(min=1), hidden=True, default=None)
@click.option("--feed-retry", "feed_retry", type=click.FloatRange(min=0.1), hidden=True, default=None)
@pass_state
def schedule(
    state: State,
    count: int | None,
    now_text: str | None,
    now_at: float | None,
    max_runs: int | None,
    feed_retry: float | None,
) -> None:
    """Run the scheduler in the foreground (stop with Ctrl-C or SIGTERM).

    At each [schedule] cron run (thinned by `every`) it sends that run's digest, or in mode "each"
    the oldest article waiting; it sends each article with a send_at at that time. It catches up
    what it missed within catch_up and resumes an interrupted send on start.
    """
    config = state.config
    clock = make_clock(config, now_text, now_at)
    if count is not None:
        print_upcoming(config, clock.now(), count)
        return
    handler = _logging(clock)
    try:
        engine(config)  # created or upgraded before the first run, said in one line
        scheduler = Scheduler(config, clock, max_runs=max_runs)
        if feed_retry is not None:  # tests: a run waiting for the feed is tried again in seconds, not minutes
            scheduler.feed_retry = dt.timedelta(seconds=feed_retry)
        asyncio.run(scheduler.serve())
    finally:
        logging.getLogger("newsletter.schedule").removeHandler(handler)
