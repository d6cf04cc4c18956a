"""`preview`: the local preview server with live reload."""

from __future__ import annotations

import webbrowser

import click

from ..errors import NewsletterError
from . import State, app, pass_state, warn
from .listen import listen

PORT_TRIES = 20
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def remote_names(host: str, given: tuple[str, ...], configured: str) -> list[str]:
    """The Host names other machines may use; loopback needs none, any other address at least one."""
    names = [n.strip().lower() for n in (*given, *configured.split(",")) if n.strip()]
    if host in LOOPBACK or host.startswith("127."):
        return names
    if not names:
        raise NewsletterError(
            f"--host {host}: other machines could read your drafts and use the Send-test button; add "
            f"--allow-remote NAME for each host name or address they use to reach it (e.g. --allow-remote "
            f"mybox.lan), or keep the default 127.0.0.1"
        )
    return names


@app.command()
@click.option("--host", default=None, help="Address to listen on (default: [preview] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: [preview] port, 8025).")
@click.option(
    "--allow-remote",
    "allow_remote",
    multiple=True,
    metavar="NAME",
    help="Serve requests for NAME, a host name or address other machines use (repeatable); "
    "needed for any --host other than loopback.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in the default browser.")
@pass_state
def preview(
    state: State, host: str | None, port: int | None, allow_remote: tuple[str, ...], open_browser: bool
) -> None:
    """Preview articles in the browser while you write; pages update on every save."""
    import uvicorn

    from ..web.preview import create_app

    config = state.config
    host = host or config.preview.host
    names = remote_names(host, allow_remote, config.preview.allow_remote)
    sock = listen(host, port or config.preview.port, setting="--port or [preview] port", tries=PORT_TRIES, busy=warn)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in {'0.0.0.0', '::'} else shown_host}:{bound_port}/"
    if names:
        warn(f"other machines may reach the preview as {', '.join(names)}: they can read your drafts and send tests")

    def ready() -> None:
        click.echo(f"Preview at {url}  (Ctrl+C to stop)")
        if open_browser:
            webbrowser.open(url)

    application = create_app(config, host=host, remote=names, on_ready=ready)
    server = uvicorn.Server(
        uvicorn.Config(application, log_level="warning", timeout_graceful_shutdown=1, lifespan="on")
    )
    server.run(sockets=[sock])
