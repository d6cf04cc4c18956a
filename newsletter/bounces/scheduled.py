"""The scheduler's bounce job: `newsletter schedule` reads the bounce mailbox every `[bounces] interval`.

One APScheduler job with a fixed id and `replace_existing=True` (restarts never pile jobs up),
first run at start, never two at once; the fetch itself runs in a thread (IMAP and the database
block). A failing mailbox is logged and tried again next time; it never stops the digest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from apscheduler.triggers.interval import IntervalTrigger

from ..config import Config, format_duration
from ..errors import NewsletterError
from .fetch import fetch

JOB_ID = "bounce-mailbox"
log = logging.getLogger("newsletter.schedule.bounces")


async def fetch_once(config: Config) -> None:
    try:
        where, summary = await asyncio.to_thread(fetch, config, lambda line: log.info("bounces: %s", line))
    except NewsletterError as exc:
        log.warning("bounces: %s; trying again in %s", exc, format_duration(config.bounces.interval))
        return
    if summary.messages:
        log.info("bounces: %s: %s", where, summary.text())


def add_fetch_job(scheduler: Any, config: Config) -> None:
    """Add the bounce job to a running-to-be APScheduler, when a mailbox and an interval are set."""
    section = config.bounces
    if not section.has_mailbox or section.interval <= dt.timedelta(0):
        return
    scheduler.add_job(
        fetch_once,
        trigger=IntervalTrigger(seconds=section.interval.total_seconds()),
        args=[config],
        id=JOB_ID,
        name="bounce mailbox",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    log.info("reading the bounce mailbox every %s", format_duration(section.interval))
