"""`feed pull`: the blog's new posts into the issues folder (the work lives in newsletter/feed)."""

from __future__ import annotations

import click

from ..feed.pull import pull
from . import State, app, engine, pass_state
from .clock import parse_moment


@app.group()
def feed() -> None:
    """Posts from your blog's RSS or Atom feed, as articles in the issues folder."""


@feed.command("pull")
@click.argument("url_or_file", required=False)
@click.option("--dry-run", is_flag=True, help="List what would be written; write nothing, record nothing.")
@click.option("--since", metavar="DATE", default=None, help="Leave out posts published before DATE (YYYY-MM-DD).")
@click.option("--overwrite", is_flag=True, help="Take the blog's version of every post, even files edited here.")
@pass_state
def pull_command(state: State, url_or_file: str | None, dry_run: bool, since: str | None, overwrite: bool) -> None:
    """Write each post of the feed not pulled before as issues/<date>-<slug>.md.

    URL_OR_FILE is an http(s) URL or a local file (default: [feed] url). A post already pulled is
    never written twice; one that changed on the blog is rewritten unless its file was edited here.
    """
    config = state.config
    since_day = parse_moment(since, "--since", config.schedule.timezone).date() if since else None
    engine(config)  # created or upgraded first, said in one line
    report = pull(
        config,
        url_or_file,
        dry_run=dry_run,
        since=since_day,
        overwrite=overwrite,
        say=lambda line: click.echo(line, err=line.startswith("warning: ")),
    )
    click.echo(report.summary())
