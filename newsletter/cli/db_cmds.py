"""`db upgrade`: bring the state database's schema up to date now (commands also do it on first use)."""

from __future__ import annotations

import click

from . import State, app, engine, pass_state


@app.group()
def db() -> None:
    """The state database (SQLite file or PostgreSQL URL)."""


@db.command()
@pass_state
def upgrade(state: State) -> None:
    """Create or upgrade the state database's schema; say which revision it is at."""
    from ..state.migrate import HEAD

    config = state.config
    engine(config)
    click.echo(f"{config.state_shown}: schema is current ({HEAD})")
