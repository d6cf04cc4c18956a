"""`db upgrade` (the schema up to date now; commands also do it on first use) and `db backup PATH`."""

from __future__ import annotations

from pathlib import Path

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


@db.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@pass_state
def backup(state: State, path: Path) -> None:
    """Copy the state database to PATH while send, schedule and serve go on (SQLite's online backup).

    On PostgreSQL: print the pg_dump command that does it, and the pg_restore command that brings it back.
    """
    config = state.config
    if config.state_is_url:
        from ..state.backup import pg_dump_command

        dump, restore = pg_dump_command(config, path)
        click.echo(f"{config.state_shown} is a PostgreSQL database; back it up with pg_dump:")
        click.echo(f"  {dump}")
        click.echo(f"and bring it back (stop serve, schedule and any send first) with:\n  {restore}")
        return
    from ..state.backup import backup_sqlite
    from ..state.unsubscribes import fold

    db = engine(config)
    fold(config, db)  # unsubscribes waiting in the journal go into the copy
    size = backup_sqlite(config, db, path)
    shown = config.path("state")
    click.echo(
        f"{shown}: backed up to {path} ({size / 1024:,.0f} KB); to restore, stop serve and schedule, copy it over "
        f"{shown} and delete {shown}-wal and {shown}-shm"
    )
