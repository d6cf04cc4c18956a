"""`init`, `render` and `send-test`: the writer's everyday commands."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import NewsletterError
from . import State, app, pass_state, run, warn, warn_about_setup


@app.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False), default=".")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(directory: Path, force: bool) -> None:
    """Create a working newsletter folder (config, theme, example article and list)."""
    from .scaffold import init_folder

    written = init_folder(directory, force=force)
    for path in written:
        click.echo(f"created {path}")
    click.echo(f"\nNext: cd {directory} && newsletter render latest")


@app.command()
@click.argument("issue", default="latest")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Output folder (default: [paths] build, i.e. build/).",
)
@pass_state
def render(state: State, issue: str, out_dir: Path | None) -> None:
    """Write ISSUE's final HTML, plain text and a sample .eml.

    ISSUE is a path, a slug (2026-11-09-tls-certificates) or `latest`.
    """
    from ..content.articles import resolve_article
    from ..content.issue import issue_for
    from ..render.build import build_issue

    config = state.config
    article = resolve_article(issue, config.path("issues"))
    output = build_issue(config, issue_for(article), out_dir or config.path("build"))
    for path, size in output.files:
        click.echo(f"{path}  {size:,} bytes")
    for warning in output.rendered.warnings:
        warn(warning)
    warn_about_setup(config)


@app.command("send-test")
@click.argument("issue", default="latest")
@click.option(
    "--to",
    "addresses",
    multiple=True,
    metavar="ADDR",
    help="Recipient (repeatable); any address, on the list or not.",
)
@pass_state
def send_test_cmd(state: State, issue: str, addresses: tuple[str, ...]) -> None:
    """Send ISSUE to the given addresses with a [TEST] subject; no campaign is recorded."""
    if not addresses:
        raise NewsletterError(
            "send-test needs --to ADDR, the address to send the test to (repeatable), e.g. "
            "newsletter send-test latest --to you@example.org"
        )
    from ..content.articles import resolve_article
    from ..content.issue import issue_for
    from ..send.testsend import send_test

    config = state.config
    article = resolve_article(issue, config.path("issues"))
    warn_about_setup(config)
    results = run(send_test(config, issue_for(article), addresses))
    for result in results:
        click.echo(f"sent test of {article.slug} to {result.recipient}: {result.detail}")
