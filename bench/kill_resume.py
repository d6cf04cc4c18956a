"""A send killed (SIGKILL) on one machine and resumed on another: duplicates and misses over N runs.

    python bench/kill_resume.py --postgres postgresql://postgres@127.0.0.1:5432/postgres --runs 5

Two newsletter folders stand for two machines sharing one PostgreSQL database. The first starts a
send to a real SMTP server (aiosmtpd, each message accepted after a short delay) and is killed at a
random point; its folder is deleted (whatever it kept locally is lost with it); the second resumes
the campaign from the database alone. The bound to check: no subscriber missed, and at most one
extra copy per connection for each kill. Without --postgres both "machines" share a SQLite file on
one disk (the journal then survives, as it would on one machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.pgdb import new_database  # noqa: E402
from newsletter.cli.scaffold import init_folder  # noqa: E402

ARTICLE = "2026-11-23-welcome"
CONNECTIONS = 4


class Slow:
    """Accepts every message after `delay` seconds; records each recipient."""

    def __init__(self) -> None:
        self.delay = 0.02
        self.received: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        with self.lock:
            self.received.extend(envelope.rcpt_tos)
        return "250 accepted"

    def count(self) -> int:
        with self.lock:
            return len(self.received)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_run(root: Path, subscribers: int, postgres: str, rng: random.Random) -> tuple[int, int, int]:
    """(accepted before the kill, duplicates, misses) for one kill on machine A and a resume on machine B."""
    first = root / "machine-a"
    init_folder(first)
    with (first / "subscribers.csv").open("w", encoding="utf-8") as fh:
        fh.write("email,name\n")
        for i in range(subscribers):
            fh.write(f"reader{i:05d}@example.org,Reader {i}\n")
    second = root / "machine-b"
    shutil.copytree(first, second)
    handler = Slow()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        {
            "NEWSLETTER_DELIVERY_BACKEND": "smtp",
            # `send` refuses a list send over SMTP from an example domain or with the example postal address.
            "NEWSLETTER_NEWSLETTER_FROM": "Privacy Notes <newsletter@privacy-notes.news>",
            "NEWSLETTER_NEWSLETTER_POSTAL_ADDRESS": "Privacy Notes, 12 Chausseestraße, 10115 Berlin, Germany",
            "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": str(controller.port),
            "NEWSLETTER_SMTP_SECURITY": "none",
            "NEWSLETTER_SMTP_CONNECTIONS": str(CONNECTIONS),
            "NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv",
            "PYTHONPATH": str(REPO),
        }
    )
    if postgres:
        env["NEWSLETTER_PATHS_STATE"] = new_database(postgres, "nl_kill")
    else:  # one SQLite file both folders name
        env["NEWSLETTER_PATHS_STATE"] = str(root / "shared.db")
    try:
        kill_after = rng.randint(subscribers // 10, subscribers * 8 // 10)
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", ARTICLE, "--yes"],
            cwd=first,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while handler.count() < kill_after and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.002)
        proc.kill()
        proc.wait()
        accepted = handler.count()
        shutil.rmtree(first)  # machine A is gone
        handler.delay = 0.0
        resumed = subprocess.run(
            [sys.executable, "-m", "newsletter", "send", ARTICLE, "--yes"],
            cwd=second,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if resumed.returncode != 0:
            raise SystemExit(f"the resume failed: {resumed.stderr}")
    finally:
        controller.stop()
    received = Counter(handler.received)
    duplicates = sum(n - 1 for n in received.values())
    misses = subscribers - len(received)
    return accepted, duplicates, misses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", metavar="URL", default="", help="a server the bench may create databases on")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    where = "PostgreSQL" if args.postgres else "one SQLite file"
    print(f"{args.runs} kills, {args.subscribers:,} subscribers, {CONNECTIONS} connections, state on {where}")
    print("run  accepted-before-kill  duplicates  misses")
    worst = 0
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            accepted, duplicates, misses = one_run(Path(tmp), args.subscribers, args.postgres, rng)
        worst = max(worst, duplicates)
        print(f"{run:>3}  {accepted:>19,}  {duplicates:>10}  {misses:>6}", flush=True)
    print(f"worst: {worst} duplicates per kill (bound: {CONNECTIONS}, one per connection)")


if __name__ == "__main__":
    main()
