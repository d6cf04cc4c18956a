"""A discarding SMTP sink (aiosmtpd) for bench/send.py when Postfix's smtp-sink is not installed.

Run as its own process (`python bench/sink.py PORT`) so it does not share the client's core.
"""

from __future__ import annotations

import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Discard:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


def main() -> None:
    controller = Controller(Discard(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
