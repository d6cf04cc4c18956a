"""Helpers every test module may use: the CLI runner, folder writers, config and state readers.

Test modules import from here (and from smtpd.py, browser.py), never from each other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from click.testing import CliRunner, Result

from newsletter.cli import app
from newsletter.config import Config, load_config
from newsletter.state import campaigns, deliveries
from newsletter.state.engine import dispose_all, engine_for
from newsletter.state.history import history_path
from newsletter.state.statuses import CampaignStatus

T = TypeVar("T")
TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
TLS = "2026-11-09-tls-certificates"
WELCOME = "2026-11-23-welcome"
FAST = {"NEWSLETTER_SMTP_RETRY_BASE_DELAY": "0.01", "NEWSLETTER_SMTP_CONNECTIONS": "3", "NEWSLETTER_SMTP_TIMEOUT": "10"}
BERLIN = ZoneInfo("Europe/Berlin")
# A PostgreSQL server the tests may make databases on (.ci/run starts one); empty: those runs skip.
POSTGRES_ADMIN_URL = os.environ.get("NL_TEST_POSTGRES_URL", "")
SUBSCRIBERS = ["ada@example.com", "grace@example.org", "renee@example.net"]
# Where digest entries link (a digest without it is refused for the list) and the unsubscribe secret.
LINKS = {"NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org", "NEWSLETTER_SECRET_KEY": "k" * 40}


@dataclass
class Cli:
    """Runs the real CLI in a folder; `env` adds NEWSLETTER_* variables for this test only."""

    folder: Path
    env: dict[str, str]

    def __call__(self, *args: str, input: str | None = None) -> Result:
        old = Path.cwd()
        os.chdir(self.folder)
        try:
            return CliRunner().invoke(app, list(args), env=self.env, input=input, catch_exceptions=False)
        finally:
            os.chdir(old)

    def subprocess(self, *args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env}
        return subprocess.run(
            [sys.executable, "-m", "newsletter", *args],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )


def write_article(folder: Path, name: str, text: str) -> Path:
    path = folder / "issues" / name
    path.write_text(text, encoding="utf-8")
    return path


def article(folder: Path, slug: str, date: str, *, draft: bool = False, title: str = "") -> None:
    """A short article with a title, a date and a summary."""
    lines = ["---", f"title: {title or slug.replace('-', ' ').title()}", f"date: {date}", f"summary: About {slug}."]
    if draft:
        lines.append("draft: true")
    write_article(folder, f"{slug}.md", "\n".join([*lines, "---", "", f"The body of {slug}.", ""]))


def write_list(folder: Path, count: int, cli: Cli | None = None) -> list[str]:
    """subscribers.csv with `count` people (name and city per row); points the CLI at it."""
    lines = ["email,name,status,city"]
    addresses = []
    for i in range(count):
        address = f"reader{i:03d}@example.org"
        addresses.append(address)
        lines.append(f"{address},Reader {i:03d},active,Town{i}")
    (folder / "subscribers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if cli is not None:
        cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "subscribers.csv"
    return addresses


def config_of(cli: Cli) -> Config:
    dispose_all()
    return load_config(cli.folder / "newsletter.toml", env={**os.environ, **cli.env})


def counts(cli: Cli, key: str = TLS) -> dict[str, int]:
    """The delivery rows of an issue's current campaign, by status."""
    engine = engine_for(config_of(cli))
    (campaign,) = [c for c in campaigns.campaigns_for(engine, key) if c.status != CampaignStatus.SUPERSEDED][:1]
    return dict(deliveries.status_counts(engine, campaign.id))


def wipe_state(cli: Cli, *, start_over: bool = False) -> None:
    """Lose the state database (a deleted SQLite file; every table dropped on PostgreSQL).

    `start_over`: the record of sends beside it goes too, as for a new newsletter (no state loss to notice).
    """
    config = config_of(cli)
    if start_over:
        history_path(config).unlink(missing_ok=True)
    if config.state_is_url:
        from newsletter.state.migrate import version_table
        from newsletter.state.schema import metadata

        engine = engine_for(config)
        metadata.drop_all(engine)
        version_table.drop(engine)
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{config.path('state')}{suffix}").unlink(missing_ok=True)
    dispose_all()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: independent of any loop a browser fixture left running."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def schedule_config(folder: Path, server: Any = None, **schedule: str) -> Config:
    """A `letter` folder's config for the schedule's tests: its list, Berlin, LINKS, `[schedule]` overrides,
    and the SMTP server when given (a tests.smtpd.SmtpServer)."""
    env = {"NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv", "NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin", **LINKS}
    env.update({f"NEWSLETTER_SCHEDULE_{k.upper()}": v for k, v in schedule.items()})
    if server is not None:
        env.update(server.env())
    return load_config(folder / "newsletter.toml", env=env)


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass (a bound for a real process, not a speed goal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()
