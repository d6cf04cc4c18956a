"""Shared fixtures: a fresh newsletter folder made by `newsletter init`, the CLI, a real SMTP server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from playwright.sync_api import Browser, sync_playwright

from newsletter.cli import app
from newsletter.cli.scaffold import init_folder
from newsletter.state.engine import dispose_all

from .browser import CHROMIUM, launch
from .smtpd import SmtpServer

REPO = Path(__file__).resolve().parent.parent


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

    def subprocess(self, *args: str, timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.env}
        return subprocess.run(
            [sys.executable, "-m", "newsletter", *args],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,  # type: ignore[arg-type]
        )


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


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A newsletter folder exactly as `newsletter init` makes it, with the repo's example articles too."""
    root = tmp_path / "letter"
    init_folder(root)
    for article in (REPO / "issues").glob("*.md"):
        (root / "issues" / article.name).write_bytes(article.read_bytes())
    return root


@pytest.fixture
def cli(folder: Path) -> Cli:
    return Cli(folder, {})


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


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


def write_article(folder: Path, name: str, text: str) -> Path:
    path = folder / "issues" / name
    path.write_text(text, encoding="utf-8")
    return path
