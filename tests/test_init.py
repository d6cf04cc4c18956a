"""`newsletter init` makes a folder every command works from, outside this repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_init_then_render_and_send_test(tmp_path: Path) -> None:
    result = run(tmp_path, "init", "letter")
    assert result.returncode == 0, result.stderr
    letter = tmp_path / "letter"
    for name in (
        "newsletter.toml",
        "subscribers.example.csv",
        "templates/email.html",
        "templates/style.css",
        "templates/digest.html",
        ".gitignore",
    ):
        assert (letter / name).is_file(), name
    assert "subscribers.csv" in (letter / ".gitignore").read_text()
    render = run(letter, "render", "latest")
    assert render.returncode == 0, render.stderr
    assert (letter / "build" / "2026-11-23-welcome.eml").is_file()
    sent = run(letter, "send-test", "latest", "--to", "you@example.com")
    assert sent.returncode == 0, sent.stderr
    assert list((letter / "outbox").glob("test-*/you@example.com-*.eml"))
    again = run(tmp_path, "init", "letter")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_folder_without_templates_uses_builtin_theme(tmp_path: Path) -> None:
    (tmp_path / "issues").mkdir()
    (tmp_path / "issues" / "2026-01-01-x.md").write_text("---\ntitle: X\ndate: 2026-01-01\nsummary: s\n---\nHello\n")
    result = run(tmp_path, "render", "latest")
    assert result.returncode == 0, result.stderr
    assert "Hello" in (tmp_path / "build" / "2026-01-01-x.html").read_text()
