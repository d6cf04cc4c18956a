"""Command-line interface: argument parsing and friendly errors only; the work lives in the package.

Each topic's commands are in their own module and register on `app`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ..config import Config, load_config
from ..errors import NewsletterError, StateError, one_line

if TYPE_CHECKING:
    from sqlalchemy import Engine

T = TypeVar("T")


def fail(error: NewsletterError) -> NoReturn:
    """Print a user error as one line (never a traceback) and exit with its status."""
    click.echo(f"newsletter: error: {error}", err=True)
    raise click.exceptions.Exit(error.exit_code)


class Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            fail(exc)
        except Exception as exc:
            if not type(exc).__module__.startswith("sqlalchemy"):
                raise
            # A database failure mid-command: one line, never SQLAlchemy's multi-line text.
            fail(StateError(f"the state database failed ({one_line(getattr(exc, 'orig', None) or exc)})"))
        except KeyboardInterrupt:
            click.echo("newsletter: interrupted", err=True)
            ctx.exit(130)


class State:
    """Per-invocation state: the config is loaded once, on first use, so `--help` never needs it."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


pass_state = click.make_pass_decorator(State)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


def note(message: str) -> None:
    click.echo(f"newsletter: {message}", err=True)


def engine(config: Config) -> Engine:
    """The state database, created or upgraded on first use (an upgrade is said in one line)."""
    from ..state.engine import engine_for

    return engine_for(config, notice=note)


def warn_about_setup(config: Config) -> None:
    """Set-up warnings (an http:// base_url, a short secret) that commands producing mail print once."""
    from ..render.unsubscribe import base_url_warnings

    for message in base_url_warnings(config):
        warn(message)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Config file (default: ./newsletter.toml, else built-in defaults).",
)
@click.version_option(package_name="quillpost")
@click.pass_context
def app(ctx: click.Context, config_path: Path | None) -> None:
    """Write articles in Markdown, preview them, send them as email."""
    ctx.obj = State(config_path)


def main() -> None:
    try:
        app.main(prog_name="newsletter")
    except BrokenPipeError:  # `newsletter status | head`
        sys.exit(0)


# Command modules register themselves on `app`.
from . import (  # noqa: E402, F401
    bounces_cmds,
    content_cmds,
    db_cmds,
    feed_cmds,
    preview_cmds,
    schedule_cmds,
    send_cmds,
    site_cmds,
    subscribers_cmds,
)
