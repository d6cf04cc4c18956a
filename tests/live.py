"""`newsletter serve`'s application under a real uvicorn on 127.0.0.1, in a thread (a replica per instance)."""

from __future__ import annotations

import http.client
import threading
import time

import httpx
import uvicorn

from newsletter.config import Config
from newsletter.web.public import create_app

from .smtpd import free_port


class LiveServer:
    """uvicorn serving the public app on a free port of 127.0.0.1; two instances on one database are two replicas."""

    def __init__(self, config: Config) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(config), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path)

    def raw(self, path: str) -> int:
        """The status of a GET with `path` sent exactly as written (no client-side normalizing)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest("GET", path, skip_accept_encoding=True)
            conn.endheaders()
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
