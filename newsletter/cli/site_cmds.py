"""`site build`: the public site (landing page, archive, feed, assets) as static files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..web.export import build_site
from . import State, app, engine, pass_state


@app.group()
def site() -> None:
    """The public site: landing page, archive, Atom feed and assets."""


@site.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=None, required=False)
@pass_state
def build(state: State, directory: Path | None) -> None:
    """Write the site into DIRECTORY (default: [paths] site, i.e. site/) for any static host.

    The same pages as `newsletter serve`; the signup form posts to [newsletter] base_url, where serve runs.
    """
    config = state.config
    out = directory or config.path("site")
    terminal = sys.stderr.isatty()
    shown = [0]

    def progress(done: int, total: int) -> None:
        # A terminal gets one line that counts up; a log gets a line per tenth.
        if terminal:
            click.echo(f"\rwriting pages: {done:,}/{total:,}", nl=done == total, err=True)
        elif total >= 100 and done * 10 // total > shown[0]:
            shown[0] = done * 10 // total
            click.echo(f"writing pages: {done:,}/{total:,}", err=True)

    report = build_site(config, engine(config), out, progress)
    pages = f"{report.pages:,} page{'' if report.pages == 1 else 's'}"
    assets = f"{report.assets:,} asset{'' if report.assets == 1 else 's'}"
    click.echo(f"wrote {pages} and {assets} to {report.out} in {report.seconds:.1f} s")
