"""`preview`: the local preview server with live reload."""

from __future__ import annotations

import errno
import socket
import webbrowser

import click

from ..errors import NewsletterError
from . import State, app, pass_state, warn

PORT_TRIES = 20


def bind_free_port(host: str, port: int, tries: int = PORT_TRIES) -> socket.socket:
    """A listening socket on `port`, or the next free one after it (saying so), up to `tries` ports."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in range(port, min(port + tries, 65536)):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                warn(f"port {candidate} on {host} is busy (another program uses it); trying {candidate + 1}")
                continue
            raise NewsletterError(
                f"cannot listen on {host}:{candidate} ({exc.strerror}); use --host 127.0.0.1 or set [preview] host"
            ) from None
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    raise NewsletterError(
        f"ports {port} to {port + tries - 1} on {host} are all busy; choose another with --port or [preview] port"
    )


@app.command()
@click.option("--host", default=None, help="Address to listen on (default: [preview] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: [preview] port, 8025).")
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in the default browser.")
@pass_state
def preview(state: State, host: str | None, port: int | None, open_browser: bool) -> None:
    """Preview articles in the browser while you write; pages update on every save."""
    import uvicorn

    from ..web.preview import create_app

    config = state.config
    host = host or config.preview.host
    sock = bind_free_port(host, port or config.preview.port)
    bound_port = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in {'0.0.0.0', '::'} else shown_host}:{bound_port}/"
    if host not in {"127.0.0.1", "localhost", "::1"}:
        warn(f"listening on {host}: other machines can read your drafts and use the Send-test button")

    def ready() -> None:
        click.echo(f"Preview at {url}  (Ctrl+C to stop)")
        if open_browser:
            webbrowser.open(url)

    application = create_app(config, host=host, on_ready=ready)
    server = uvicorn.Server(
        uvicorn.Config(application, log_level="warning", timeout_graceful_shutdown=1, lifespan="on")
    )
    server.run(sockets=[sock])
