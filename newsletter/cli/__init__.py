"""Command-line interface: argument parsing and friendly errors only; the work lives in the package.

Each topic's commands are in their own module and register on `app`. The modules are imported only
when their command runs (`COMMANDS` says which module holds which command and gives `--help` its
line), so `newsletter --help` or `render` never pays for the web server, the scheduler or the
database driver.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ..errors import ConfigError, Declined, FilesError, NewsletterError, StateError, one_line

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ..config import Config

T = TypeVar("T")

# name -> (module in this package, the line `newsletter --help` shows). tests/test_startup.py checks
# that each line is the command's own short help.
COMMANDS: dict[str, tuple[str, str]] = {
    "bounces": (
        "bounces_cmds",
        "Read bounces and spam complaints; suppress the addresses they name ([bounces] in newsletter.toml).",
    ),
    "db": ("db_cmds", "The state database (SQLite file or PostgreSQL URL)."),
    "digest": (
        "schedule_cmds",
        "Show what the next digest would hold (its key, run, subject, articles), without sending it.",
    ),
    "doctor": (
        "doctor_cmds",
        "Check the set-up before a real send: From, postal address, unsubscribe, DKIM (and DNS with --dns).",
    ),
    "feed": ("feed_cmds", "Posts from your blog's RSS or Atom feed, as articles in the issues folder."),
    "init": ("content_cmds", "Create a working newsletter folder (config, theme, example article and list)."),
    "preview": ("preview_cmds", "Preview articles in the browser while you write; pages update on every save."),
    "render": ("content_cmds", "Write ISSUE's final HTML, plain text and a sample .eml."),
    "schedule": ("schedule_cmds", "Run the scheduler in the foreground (stop with Ctrl-C or SIGTERM)."),
    "send": (
        "send_cmds",
        "Send ISSUE to every subscriber (resumes an interrupted send; never sends anyone two copies).",
    ),
    "send-test": ("content_cmds", "Send ISSUE to the given addresses with a [TEST] subject; no campaign is recorded."),
    "serve": (
        "serve_cmds",
        "Run the public endpoints: signup with double opt-in, one-click unsubscribe, the web archive, /healthz.",
    ),
    "site": ("site_cmds", "The public site: landing page, archive, Atom feed and assets."),
    "status": ("send_cmds", "Campaigns with their counts and last errors (all, or one ISSUE's)."),
    "subscribers": (
        "subscribers_cmds",
        "The list: add, import, tag, list, export; unsubscribe, resubscribe or erase an address.",
    ),
}
# Libraries whose errors mean "the state database failed": one line, never their multi-line text.
_DATABASE_MODULES = ("sqlalchemy", "sqlite3", "psycopg")


def fail(error: NewsletterError) -> NoReturn:
    """Print a user error as one line (never a traceback) and exit with its status."""
    click.echo(f"newsletter: error: {error}", err=True)
    raise click.exceptions.Exit(error.exit_code)


def _database_failure(ctx: click.Context, exc: BaseException) -> StateError:
    state = ctx.find_object(State)
    if state is not None and state.loaded is not None:
        from ..state.engine import failure  # says how to restore a damaged file

        return failure(state.loaded, exc)
    reason = one_line(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return StateError(f"the state database failed ({reason}); fix that, then run the command again")


def _usage_line(exc: click.UsageError) -> str:
    """click's usage error as one line: what is wrong and where to read more."""
    path = exc.ctx.command_path if exc.ctx is not None else "newsletter"
    text = re.sub(r"\.\s+(\w)", lambda m: f"; {m.group(1).lower()}", " ".join(exc.format_message().split())).rstrip(".")
    message = text[:1].lower() + text[1:]
    where = path.partition(" ")[2]
    return f"{where}: {message}; see `{path} --help`" if where else f"{message}; see `{path} --help`"


class Group(click.Group):
    """The `newsletter` group: commands loaded on first use, and every error as one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"{__name__}.{COMMANDS[cmd_name][0]}")  # its decorators register it
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from `COMMANDS`, so `--help` imports no command module."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            fail(exc)
        except KeyboardInterrupt:
            click.echo("newsletter: interrupted", err=True)
            ctx.exit(130)
        except click.exceptions.Abort:  # a prompt got no answer (end of input) or Ctrl-C
            fail(Declined("no answer at the prompt; nothing was done (add --yes to run without asking)"))
        except Exception as exc:
            if type(exc).__module__.startswith(_DATABASE_MODULES):
                fail(_database_failure(ctx, exc))
            if isinstance(exc, OSError) and exc.strerror:  # a file or the disk: one line, not a traceback
                where = f"{exc.filename}: " if exc.filename else ""
                fail(FilesError(f"{where}{exc.strerror}; fix that, then run the command again"))
            raise

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """click's own errors (a missing option, a bad value) as one `newsletter: error:` line, status 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            click.echo(f"newsletter: error: {_usage_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"newsletter: error: {one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("newsletter: error: stopped; nothing was done", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


class State:
    """Per-invocation state: the config is loaded once, on first use, so `--help` never needs it."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self.loaded: Config | None = None

    @property
    def config(self) -> Config:
        if self.loaded is None:
            from pathlib import Path

            from ..config import CONFIG_NAME, load_config

            config = load_config(Path(self.config_path) if self.config_path is not None else None)
            if config.source is None and not config.path("issues").is_dir():
                # Not a newsletter folder: a command here would only make a stray newsletter.db.
                raise ConfigError(
                    f"no {CONFIG_NAME} and no issues/ folder in {os.getcwd()}: not a newsletter folder; cd into "
                    f"yours, give --config PATH, or make one with `newsletter init`"
                )
            self.loaded = config
        return self.loaded


pass_state = click.make_pass_decorator(State)


def run(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio

    return asyncio.run(coro)


def warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


def note(message: str) -> None:
    click.echo(f"newsletter: {message}", err=True)


def ask(question: str) -> None:
    """A yes/no question; no (or no answer) stops the command with `Declined`, nothing done."""
    try:
        yes = click.confirm(question)
    except click.exceptions.Abort:
        raise Declined("no answer at the prompt; nothing was sent (add --yes to send without asking)") from None
    if not yes:
        raise Declined("not confirmed at the prompt; nothing was sent")


def engine(config: Config) -> Engine:
    """The state database, created or upgraded on first use (an upgrade is said in one line)."""
    from ..state.engine import engine_for

    return engine_for(config, notice=note)


def warn_about_setup(config: Config) -> None:
    """Set-up warnings (an http:// base_url, a short secret) that commands producing mail print once."""
    from ..render.unsubscribe import base_url_warnings

    for message in base_url_warnings(config):
        warn(message)


@click.group(name="newsletter", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),  # a str: pathlib is not imported for `--help`
    default=None,
    help="Config file (default: ./newsletter.toml, else built-in defaults).",
)
@click.version_option(package_name="quillpost")
@click.pass_context
def app(ctx: click.Context, config_path: str | None) -> None:
    """Write articles in Markdown, preview them, send them as email."""
    ctx.obj = State(config_path)


def main() -> None:
    try:
        app.main(prog_name="newsletter")
    except BrokenPipeError:  # `newsletter status | head`
        sys.exit(0)
