"""`serve`: the public site, signups and one-click unsubscribe, behind a reverse proxy."""

from __future__ import annotations

import click

from . import State, app, pass_state, warn, warn_about_setup
from .listen import listen


@app.command()
@click.option("--host", default=None, help="Interface to listen on (default: [serve] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="TCP port (default: [serve] port, 8000).")
@pass_state
def serve(state: State, host: str | None, port: int | None) -> None:
    """Run the public endpoints: signup with double opt-in, one-click unsubscribe, the web archive, /healthz.

    Put it behind a reverse proxy that terminates HTTPS at [newsletter] base_url.
    """
    from ..web.public import serve as run_server

    config = state.config
    warn_about_setup(config)
    if not config.secret_key:
        warn(
            "NEWSLETTER_SECRET_KEY is not set: every unsubscribe link will be refused and signups are off; "
            "set the same value as for send"
        )
    if not config.newsletter.base_url:
        warn("[newsletter] base_url is empty: emails carry no link to this server; set it to its public https:// URL")
    # Bound here: a busy port is one line, before the state database or the site is touched.
    sock = listen(host or config.serve.host, port or config.serve.port, setting="--port or [serve] port")
    run_server(config, sock)
