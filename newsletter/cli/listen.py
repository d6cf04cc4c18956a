"""Listening sockets for `preview` and `serve`, bound here so a busy port is one line, not a server's log."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

from ..errors import NewsletterError


def listen(
    host: str, port: int, *, setting: str, tries: int = 1, busy: Callable[[str], None] | None = None
) -> socket.socket:
    """A listening socket on `port`, or (tries > 1) the next free port after it, up to `tries` ports.

    `setting` names where the port came from for the error line ("--port or [serve] port"); `busy`
    hears about each busy port that is skipped.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last = min(port + tries, 65536)
    for candidate in range(port, last):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE and candidate + 1 < last:
                if busy is not None:
                    busy(f"port {candidate} on {host} is busy (another program uses it); trying {candidate + 1}")
                continue
            if exc.errno == errno.EADDRINUSE:
                ports = f"ports {port} to {candidate}" if tries > 1 else f"port {port}"
                raise NewsletterError(
                    f"{ports} on {host} {'are all' if tries > 1 else 'is'} busy (another program listens there); "
                    f"stop it or choose another with {setting}"
                ) from None
            raise NewsletterError(
                f"cannot listen on {host}:{candidate} ({exc.strerror}); choose another address or port with {setting}"
            ) from None
        except (socket.gaierror, UnicodeError) as exc:
            sock.close()
            raise NewsletterError(f"cannot listen on {host!r} ({exc}); give an address like 127.0.0.1") from None
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    raise NewsletterError(f"no port to try from {port}; choose another with {setting}")  # pragma: no cover
