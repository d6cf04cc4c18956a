"""A real HTTP server on 127.0.0.1 for the feed tests: serves the files of a folder, with faults.

`/<name>` serves `<root>/<name>` with an ETag (a hash of the bytes: If-None-Match gets a 304, so
conditional GETs are exercised for real); `/slow/<name>` waits before answering (timeouts);
`/stream/<name>` sends the body with no Content-Length (the size cap must hold while reading);
`/gzip/<name>` sends it gzip-compressed (the cap holds for what it unpacks to);
`/moved/<name>` redirects to `/<name>`; `/status/<code>` answers with that status; a name in
`failing` answers 503 until it is taken out. Every request's path and headers are kept in `requests`.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class FeedServer:
    def __init__(self, root: Path, delay: float = 5.0) -> None:
        self.root = root
        self.delay = delay
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.failing: set[str] = set()
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers.items())))
                path = self.path.split("?", 1)[0]
                if path.startswith("/status/"):
                    self.send_error(int(path.removeprefix("/status/")))
                    return
                if path.startswith("/moved/"):
                    self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                    self.send_header("Location", path.removeprefix("/moved"))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path.startswith("/slow/"):
                    server.closing.wait(server.delay)
                    path = path.removeprefix("/slow")
                if path.lstrip("/") in server.failing:
                    self.send_error(HTTPStatus.SERVICE_UNAVAILABLE)
                    return
                stream, packed = path.startswith("/stream/"), path.startswith("/gzip/")
                file = server.root / path.removeprefix("/stream").removeprefix("/gzip").lstrip("/")
                if not file.is_file():
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                body = gzip.compress(file.read_bytes()) if packed else file.read_bytes()
                etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(HTTPStatus.NOT_MODIFIED)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", "text/html" if file.suffix == ".html" else "application/rss+xml")
                self.send_header("ETag", etag)
                if packed:
                    self.send_header("Content-Encoding", "gzip")
                if stream:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for start in range(0, len(body), 4096):
                        self.wfile.write(body[start : start + 4096])
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
