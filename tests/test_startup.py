"""Start-up: a command imports only what it uses; `--help` lists every command without importing one.

Speed is measured by bench/startup.py; these tests check the cause (which modules a fresh process
loads), which does not depend on how busy the machine is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from newsletter.cli import COMMANDS, app

from .helpers import Cli

PROBE = """
import sys
sys.argv = ["newsletter", *sys.argv[1:]]
try:
    from newsletter.cli import main
    main()
except SystemExit:
    pass
print("LOADED", " ".join(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r} or m.startswith("newsletter.cli."))), file=sys.stderr)
"""
HEAVY = {"sqlalchemy", "alembic", "starlette", "uvicorn", "apscheduler", "playwright", "aiosmtplib", "watchfiles", "psycopg"}


def loaded(folder: Path, *args: str) -> set[str]:
    """The heavy modules and command modules a fresh `newsletter ARGS` process imported."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("LOADED")]
    return set(line.split()[1:])


@pytest.mark.e2e
def test_help_imports_no_command_module_and_no_heavy_library(folder: Path) -> None:
    assert loaded(folder, "--help") == set()


@pytest.mark.e2e
def test_render_needs_no_database_web_or_scheduler_library(folder: Path) -> None:
    """A custom field imported into the state database still renders: read there without SQLAlchemy."""
    (folder / "members.csv").write_text("email,name,plan\nzoe@example.org,Zoe,gold\n")
    assert Cli(folder, {})("subscribers", "import", "members.csv").exit_code == 0
    email_html = folder / "templates" / "email.html"
    email_html.write_text(email_html.read_text().replace("{{ body_html }}", "{{ body_html }}<p>Plan: {{ subscriber.plan | default('free') }}</p>"))
    assert loaded(folder, "render", "latest") == {"newsletter.cli.content_cmds"}
    assert "Plan: free" in (folder / "build" / "2026-11-23-welcome.html").read_text()


def test_help_lists_every_command_with_its_own_line(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == sorted(COMMANDS)
    context = click.Context(app)
    for name, (_module, line) in COMMANDS.items():
        command = app.get_command(context, name)
        assert command is not None, name
        # The registry's line is the command's own short help, so --help says the same before and after loading.
        assert click.Command(name, help=line).get_short_help_str(200) == command.get_short_help_str(200), name
