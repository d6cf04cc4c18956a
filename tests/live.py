"""`newsletter serve`'s application under a real uvicorn on 127.0.0.1, in a thread (a replica per instance)."""

from __future__ import annotations

import threading
import time

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
