"""Shared fixtures: a fresh newsletter folder, the CLI, a real SMTP server, the state database, Chromium.

`database` runs a test on SQLite and on a real PostgreSQL (a fresh database per test, made on the
server named by NL_TEST_POSTGRES_URL, which .ci/run starts); without that server the PostgreSQL
runs skip with a one-line reason.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, sync_playwright

from newsletter.cli.scaffold import init_folder
from newsletter.state.engine import dispose_all

from .browser import CHROMIUM, launch
from .helpers import DATA, POSTGRES_ADMIN_URL, Cli
from .smtpd import SmtpServer

if TYPE_CHECKING:
    from sqlalchemy import Engine


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NEWSLETTER_* variable from the developer's shell leaks into a test."""
    for var in list(os.environ):
        if var.startswith("NEWSLETTER_"):
            monkeypatch.delenv(var)


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    """Every test opens its own state database: no engine (or pooled connection) outlives a test."""
    dispose_all()
    yield
    dispose_all()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """The [paths] state of a test: a SQLite file in its folder, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield "newsletter.db"
        return
    if not POSTGRES_ADMIN_URL:
        pytest.skip("no PostgreSQL server given: set NL_TEST_POSTGRES_URL (.ci/run starts one)")
    from sqlalchemy import create_engine

    name = f"nl_test_{secrets.token_hex(6)}"
    admin = create_engine(
        POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    base, _, _old = POSTGRES_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        dispose_all()
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin: Engine, name: str) -> None:
    """DROP ... WITH (FORCE). An autovacuum worker on the database is a superuser's process this role may
    not end (InsufficientPrivilege): it finishes within moments, so the drop is tried again."""
    from sqlalchemy.exc import ProgrammingError

    deadline = time.monotonic() + 30
    while True:
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            return
        except ProgrammingError as exc:
            if type(exc.orig).__name__ != "InsufficientPrivilege" or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def folder(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A newsletter folder as `newsletter init` makes it, with the tests' own articles (tests/data/issues).

    When the test asks for `database`, its newsletter.toml names that state database.
    """
    root = tmp_path / "letter"
    init_folder(root)
    # `init` writes this machine's time zone; the tests' dates and runs are written for Berlin.
    config = root / "newsletter.toml"
    config.write_text(
        re.sub(r"^#? ?timezone = .*$", 'timezone = "Europe/Berlin"', config.read_text(encoding="utf-8"), flags=re.M),
        encoding="utf-8",
    )
    for path in (root / "issues").glob("*.md"):
        path.unlink()
    for article in (DATA / "issues").glob("*.md"):
        (root / "issues" / article.name).write_bytes(article.read_bytes())
    if "database" in request.fixturenames:
        config = root / "newsletter.toml"
        text = config.read_text(encoding="utf-8")
        state = request.getfixturevalue("database")
        assert 'state = "newsletter.db"' in text
        config.write_text(text.replace('state = "newsletter.db"', f'state = "{state}"'), encoding="utf-8")
    return root


@pytest.fixture
def cli(folder: Path) -> Cli:
    return Cli(folder, {})


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def letter(folder: Path) -> Path:
    """A newsletter folder with no articles and a three-person list (the digest's tests)."""
    from .helpers import SUBSCRIBERS

    for path in (folder / "issues").glob("*.md"):
        path.unlink()
    (folder / "subscribers.csv").write_text(
        "email,name\n" + "".join(f"{e},{e.split('@')[0].title()}\n" for e in SUBSCRIBERS), encoding="utf-8"
    )
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium through Playwright; never a downloaded browser.

    Module scope, not session: sync Playwright keeps an event loop running on the main thread
    while it is open, which would break every later test that calls asyncio.run in-process.
    """
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} not found: the browser tests need Debian's chromium; run .ci/run, which installs it")
    with sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium
        chromium.close()
