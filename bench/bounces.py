"""Benchmark: `newsletter bounces fetch` of 10,000 bounce messages from a Maildir; time and rate.

    python bench/bounces.py [--messages 10000] [--repeat 3] [--postgres URL]

Sets up bench/out/bounces/: a newsletter folder whose state holds a campaign sent to N addresses
(delivery rows marked sent), and a Maildir of N bounces, one per address, each carrying the VERP
token of its delivery: a realistic mix built from the test fixtures (60% Postfix DSNs, 15% Gmail
soft bounces, 10% SES notifications, 5% Yahoo ARF complaints, 5% Exchange NDRs read by
flufl.bounce, 5% out-of-office replies). Each run starts from a fresh copy of the Maildir and no
events or suppressions. It prints, best of `--repeat` interleaved runs:

  (a) floor: reading every file and `email.message_from_bytes` (what any Python reader pays)
  (b) `fetch()` in-process: read, parse, classify, verify the token against the state database,
      record the events and their suppressions (one transaction per 100 messages), move each file
  (c) `newsletter bounces fetch` as a process (imports and start-up included)

then b/a: how much the understanding and the bookkeeping cost over parsing alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from email import message_from_bytes
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from newsletter.bounces.fetch import fetch  # noqa: E402
from newsletter.cli.scaffold import init_folder  # noqa: E402
from newsletter.config import load_config  # noqa: E402
from newsletter.send.verp import Verp  # noqa: E402
from newsletter.state import campaigns, deliveries  # noqa: E402
from newsletter.state.engine import dispose_all, engine_for  # noqa: E402
from newsletter.state.migrate import version_table  # noqa: E402
from newsletter.state.schema import bounce_events, metadata, suppressions  # noqa: E402
from newsletter.state.schema import deliveries as deliveries_table  # noqa: E402

OUT = REPO / "bench" / "out" / "bounces"
FIXTURES = REPO / "tests" / "data" / "bounces"
SECRET = "bench-secret-0123456789abcdefghijkl"
MIX = [
    ("postfix-dsn.eml", 60),
    ("gmail-bounce.eml", 15),
    ("ses-bounce.eml", 10),
    ("yahoo-arf.eml", 5),
    ("exchange-ndr.eml", 5),
    ("out-of-office.eml", 5),
]


class Recipient:
    def __init__(self, number: int) -> None:
        self.email = f"reader.{number}@example.org"
        self.name = f"Reader {number}"
        self.fields = {"email": self.email, "name": self.name}
        self.line = number + 2


def environment(postgres: str) -> dict[str, str]:
    env = {
        "NEWSLETTER_SECRET_KEY": SECRET,
        "NEWSLETTER_BOUNCES_ADDRESS": "bounces@example.com",
        "NEWSLETTER_BOUNCES_MAILDIR": "mail",
    }
    if postgres:
        env["NEWSLETTER_PATHS_STATE"] = postgres
    return env


def setup(count: int, env: dict[str, str]) -> None:
    """The folder, a campaign sent to `count` addresses, and the Maildir of their bounces (kept as mail.orig)."""
    shutil.rmtree(OUT, ignore_errors=True)
    init_folder(OUT)
    config = load_config(OUT / "newsletter.toml", env=env)
    if config.state_is_url:  # start from an empty schema there too
        engine = engine_for(config)
        metadata.drop_all(engine)
        version_table.drop(engine)
        dispose_all()
    engine = engine_for(config)
    campaign = campaigns.create_campaign(engine, "2026-11-23-welcome", "0123456789abcdef", 1, "Welcome", "Welcome")
    run = campaigns.begin_run(engine, campaign.id)
    deliveries.add_subscribers(engine, campaign.id, run, (Recipient(i) for i in range(count)))
    with engine.begin() as conn:
        conn.execute(deliveries_table.update().values(status="sent", sent_at=deliveries_table.c.updated_at))
        d = deliveries_table.c
        ids = {email: ident for ident, email in conn.execute(select(d.id, d.email))}
    verp = Verp("bounces@example.com", SECRET)
    templates = [((FIXTURES / name).read_text(encoding="utf-8"), share) for name, share in MIX]
    maildir = OUT / "mail.orig"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    plan = [text for text, share in templates for _ in range(share)]
    for number in range(count):
        recipient = Recipient(number)
        text = plan[number % len(plan)]
        message_id = f"<{number:032x}@example.com>"
        data = (
            text.replace("__VERP__", verp.list_sender(campaign.id, ids[recipient.email], recipient.email))
            .replace("__RCPT__", recipient.email)
            .replace("__MESSAGE_ID__", message_id)
            .replace("__LIST_UNSUBSCRIBE__", "<mailto:newsletter@example.com?subject=unsubscribe>")
            .replace("4Xk2Zp1r5Nz9vQx@", f"{number:x}.postfix@")  # each report its own Message-ID
            .replace("9f41.GMR@", f"{number:x}.GMR@")
            .replace("-000000@email.amazonses.com", f"-{number:06x}@email.amazonses.com")
            .replace(".4711.abuse@", f".{number}.abuse@")
            .replace("C8E3A1F0B2D94E1C9A7F6E5D4C3B2A19@", f"{number:032X}@")
            .replace("AM0PR07MB6113E5F1C0D2B3A4F5E6D7C8B9A0@", f"AM0PR07MB{number:027X}@")
        )
        (maildir / "new" / f"1795510800.M{number}P1.bench").write_bytes(
            data.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        )
    dispose_all()


def fresh(env: dict[str, str]) -> None:
    """The Maildir as delivered, no events, no suppressions."""
    shutil.rmtree(OUT / "mail", ignore_errors=True)
    shutil.copytree(OUT / "mail.orig", OUT / "mail")
    engine = engine_for(load_config(OUT / "newsletter.toml", env=env))
    with engine.begin() as conn:
        conn.execute(bounce_events.delete())
        conn.execute(suppressions.delete())
    dispose_all()


def floor() -> float:
    started = time.perf_counter()
    for path in sorted((OUT / "mail" / "new").iterdir()):
        message_from_bytes(path.read_bytes())
    return time.perf_counter() - started


def in_process(env: dict[str, str]) -> tuple[float, str]:
    config = load_config(OUT / "newsletter.toml", env=env)
    engine_for(config)  # opened before the clock starts, as the CLI does before fetching
    started = time.perf_counter()
    _where, summary = fetch(config, lambda line: None)
    elapsed = time.perf_counter() - started
    dispose_all()
    return elapsed, summary.text()


def process(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "newsletter", "bounces", "fetch"],
        cwd=OUT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", default="", help="state in this PostgreSQL database (emptied)")
    args = parser.parse_args()
    env = environment(args.postgres)
    setup(args.messages, env)
    best = {"a": float("inf"), "b": float("inf"), "c": float("inf")}
    summary = ""
    for _ in range(args.repeat):
        fresh(env)
        best["a"] = min(best["a"], floor())
        fresh(env)
        elapsed, summary = in_process(env)
        best["b"] = min(best["b"], elapsed)
        fresh(env)
        best["c"] = min(best["c"], process(env))
    n = args.messages
    store = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{n:,} bounce messages from a Maildir, state in {store}; best of {args.repeat}")
    print(f"  fetch reported: {summary}")
    for key, label in (("a", "floor: read + parse"), ("b", "fetch() in-process"), ("c", "bounces fetch (process)")):
        print(f"  ({key}) {label:<26} {best[key]:7.2f} s  {n / best[key]:8,.0f} msg/s")
    print(f"  b/a: {best['b'] / best['a']:.1f}x the parse alone")


if __name__ == "__main__":
    main()
