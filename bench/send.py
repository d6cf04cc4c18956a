"""Benchmark of `newsletter send` against a local SMTP sink, with its ceiling and a naive baseline.

    python bench/send.py            # 10,000 (and 100,000 for memory) subscribers
    python bench/send.py --quick    # smaller runs, same measurements
    python bench/send.py --subscribers 1000   # 1,000 and 10,000 subscribers (start-up weighs most)
    python bench/send.py --against ../old-checkout
                                    # also (b) of another checkout, interleaved: before/after in one run
    python bench/send.py --rtt 20      # a relay 20 ms away (bench/rtt_proxy.py in front of the sink):
                                    # (a) with 4 connections against (b) with its default settings
    python bench/send.py --dkim       # every message DKIM-signed (RSA-2048), against the same send unsigned
    python bench/send.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
                                    # (b) on PostgreSQL: a new database per run, made on that server
    python bench/send.py --verp     # (b) with [bounces] address: a signed envelope sender per message
    python bench/send.py --from-db  # (b) with the list already in the state database (imported
                                    # before the timed run) and no CSV: a send from signups/imports

The sink is Postfix's smtp-sink when installed (apt-get install postfix), else an aiosmtpd sink
in its own process (bench/sink.py), so the sink never shares the client's core. It prints:
  (a) ceiling: raw aiosmtplib pushing prebuilt messages of the same size over the same connections
  (b) `newsletter send` as a subprocess: CSV import, state store, personalization, progress, SMTP
  (c) naive: per subscriber Jinja2 + premailer + EmailMessage, smtplib, one connection
then msg/s for each, b/a, b/c, and the peak RSS of (b) at two list sizes. (a) and (b) run
`--repeat` times, interleaved, and each keeps its best run, since the machine may be shared.
Targets: b/a >= 0.8, b/c >= 5, RSS(100k) <= 1.3 x RSS(10k).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from newsletter.cli.scaffold import init_folder  # noqa: E402
from newsletter.config import load_config  # noqa: E402
from newsletter.content.articles import resolve_article  # noqa: E402
from newsletter.content.issue import issue_for  # noqa: E402
from newsletter.content.subscribers import Subscriber, read_columns  # noqa: E402
from newsletter.render.issue import render_issue  # noqa: E402
from newsletter.render.mime import MessageFactory  # noqa: E402

ARTICLE = "2026-11-23-welcome"
# --one-click: every message carries a personal signed unsubscribe URL and List-Unsubscribe-Post.
ONE_CLICK = {"NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org", "NEWSLETTER_SECRET_KEY": "b" * 32}
# --verp: every message of (b) goes out with its own signed envelope sender ([bounces] address).
VERP = {"NEWSLETTER_BOUNCES_ADDRESS": "bounces@example.com", "NEWSLETTER_SECRET_KEY": "b" * 32}
EXTRA_ENV: dict[str, str] = {}
CONNECTIONS = 4
DEFAULT_CONNECTIONS: list[bool] = []  # non-empty: (b) runs with its default [smtp] connections (--rtt)
POSTGRES: list[str] = []  # the admin URL of a PostgreSQL server, when (b) runs on PostgreSQL
FROM_DB: list[bool] = []  # (b) sends from a list imported beforehand, with no CSV to sync


def dkim_env(folder: Path) -> dict[str, str]:
    """A fresh RSA-2048 key for DKIM signing (`--dkim`)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "dkim.key"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return {
        "NEWSLETTER_DKIM_DOMAIN": "example.com",
        "NEWSLETTER_DKIM_SELECTOR": "bench",
        "NEWSLETTER_DKIM_KEY_FILE": str(path),
    }


def fresh_state(folder: Path) -> dict[str, str]:
    """A new state database for a run: the SQLite file removed, or a new PostgreSQL database."""
    for leftover in folder.glob("newsletter.db*"):
        leftover.unlink()
    if not POSTGRES:
        return {}
    from sqlalchemy import create_engine

    name = f"nl_bench_{os.getpid()}_{time.monotonic_ns()}"
    admin = create_engine(
        POSTGRES[0].replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return {"NEWSLETTER_PATHS_STATE": f"{POSTGRES[0].rpartition('/')[0]}/{name}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """smtp-sink (C, Postfix) when available, else bench/sink.py (aiosmtpd), in a separate process."""

    def __init__(self) -> None:
        self.port = free_port()
        smtp_sink = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else "")
        if smtp_sink:
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            self.name = "postfix smtp-sink"
            cmd = [smtp_sink, *user, f"127.0.0.1:{self.port}", "512"]
        else:
            self.name = "aiosmtpd sink (subprocess)"
            cmd = [sys.executable, str(REPO / "bench" / "sink.py"), str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the sink ({self.name}) did not start") from None
                time.sleep(0.05)

    def behind_proxy(self, rtt_ms: float) -> None:
        """From now on connections go through bench/rtt_proxy.py, which adds `rtt_ms` per round trip."""
        target, self.port = self.port, free_port()
        proxy = [sys.executable, str(REPO / "bench" / "rtt_proxy.py"), str(self.port), str(target), str(rtt_ms)]
        self.proxy = subprocess.Popen(proxy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.name += f" behind a {rtt_ms:g} ms round-trip proxy"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the round-trip proxy did not start") from None
                time.sleep(0.05)

    def close(self) -> None:
        if getattr(self, "proxy", None) is not None:
            self.proxy.terminate()
            self.proxy.wait(timeout=10)
        self.proc.terminate()
        self.proc.wait(timeout=10)


def make_folder(root: Path, count: int) -> Path:
    folder = root / f"letter-{count}"
    init_folder(folder)
    with (folder / "subscribers.csv").open("w", encoding="utf-8") as fh:
        # A first_name column: the theme greets by it, and a checkout from before it existed (--against) reads it too.
        fh.write("email,name,first_name,status,city\n")
        for i in range(count):
            fh.write(f"reader{i:06d}@example.org,Reader {i},Reader,active,Town {i % 97}\n")
    return folder


def env_for(sink: Sink, folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        {
            "NEWSLETTER_DELIVERY_BACKEND": "smtp",
            "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": str(sink.port),
            "NEWSLETTER_SMTP_SECURITY": "none",
            **({} if DEFAULT_CONNECTIONS else {"NEWSLETTER_SMTP_CONNECTIONS": str(CONNECTIONS)}),
            "NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv",
            "PYTHONPATH": str(REPO),
            # As installed: bytecode compiled once (kept out of the repository), not on every start.
            "PYTHONPYCACHEPREFIX": str(folder.parent / "pycache"),
        }
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(EXTRA_ENV)
    return env


def sample_message(folder: Path) -> tuple[bytes, str]:
    config = load_config(folder / "newsletter.toml", env=EXTRA_ENV)
    issue = issue_for(resolve_article(ARTICLE, config.path("issues")))
    rendered = render_issue(issue, config, read_columns(folder / "subscribers.csv"))
    factory = MessageFactory(rendered, config, message_key="bench")
    return factory.build(Subscriber.of("reader000001@example.org", "Reader 1")), factory.envelope_from


async def ceiling(sink: Sink, message: bytes, sender: str, count: int) -> float:
    """(a) raw aiosmtplib: N connections, each sending prebuilt messages one after another."""
    per = [count // CONNECTIONS + (i < count % CONNECTIONS) for i in range(CONNECTIONS)]

    async def one(n: int, k: int) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, use_tls=False, start_tls=False)
        await client.connect()
        for i in range(n):
            await client.sendmail(sender, [f"reader{k}-{i}@example.org"], message)
        await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(one(n, k) for k, n in enumerate(per)))
    return count / (time.perf_counter() - start)


@dataclass
class SendRun:
    rate_wall: float  # messages / whole process time (start-up, render, CSV import included)
    rate_sending: float  # as the summary reports it (the sending phase)
    peak_rss_mb: float
    wall: float


def newsletter_send(sink: Sink, folder: Path, count: int, tree: Path = REPO) -> SendRun:
    """(b) the real command in a subprocess; its exact wall time and peak RSS from os.wait4 (its own rusage).

    `tree`: the checkout whose package runs (another one for a before/after comparison).
    """
    state = fresh_state(folder)  # a fresh campaign each time
    env = {**env_for(sink, folder), **state, "PYTHONPATH": str(tree.resolve())}
    if FROM_DB:  # the list into the database first (not timed); the send then has no CSV to read
        env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "no-such-list.csv"
        imported = subprocess.run(
            [sys.executable, "-m", "newsletter", "subscribers", "import", "subscribers.csv"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
        )
        if imported.returncode != 0 or f"{count:,} added" not in imported.stdout:
            raise SystemExit(f"newsletter subscribers import failed: {imported.stdout}{imported.stderr}")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", ARTICLE, "--yes"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    out = proc.stdout.read() if proc.stdout else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or f"sent {count:,}," not in out:
        raise SystemExit(f"newsletter send failed ({proc.returncode}): {out}")
    rate = float(re.search(r"([\d,]+) msg/s", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    return SendRun(count / wall, rate, usage.ru_maxrss / 1024, wall)


def naive(sink: Sink, folder: Path, count: int) -> float:
    """(c) what a hand-written sender does: everything per subscriber, smtplib, one connection."""
    config = load_config(folder / "newsletter.toml", env={})
    issue = issue_for(resolve_article(ARTICLE, config.path("issues")))
    columns = read_columns(folder / "subscribers.csv")
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
        for i in range(count):
            address, name = f"reader{i:06d}@example.org", f"Reader {i}"
            rendered = render_issue(issue, config, columns)  # Markdown + Jinja2 + premailer
            html, text = rendered.personalize({"email": address, "name": name}, "mailto:unsubscribe@example.com")
            msg = EmailMessage()
            msg["From"] = config.newsletter.from_
            msg["To"] = f"{name} <{address}>"
            msg["Subject"] = rendered.subject
            msg.set_content(text)
            msg.add_alternative(html, subtype="html")
            smtp.send_message(msg)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 / 20,000 subscribers, 300 naive")
    parser.add_argument("--subscribers", type=int, metavar="N", help="N and 10 x N subscribers (default 10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and (b), interleaved; best of each")
    parser.add_argument(
        "--one-click", action="store_true", help="personal signed unsubscribe URLs (base_url + secret) in (a) and (b)"
    )
    parser.add_argument(
        "--postgres", metavar="URL", help="run (b) on PostgreSQL: a server the bench may create databases on"
    )
    parser.add_argument("--verp", action="store_true", help="(b) with a bounce address: a VERP sender per message")
    parser.add_argument("--against", metavar="DIR", type=Path, help="also run (b) from another checkout, interleaved")
    parser.add_argument("--dkim", action="store_true", help="(b) signs every message with DKIM (RSA-2048)")
    parser.add_argument(
        "--rtt", type=float, metavar="MS", help="a relay this many ms away: (a) 4 connections, (b) defaults"
    )
    parser.add_argument(
        "--from-db", action="store_true", help="(b) sends from a list imported into the state database beforehand"
    )
    args = parser.parse_args()
    if args.from_db:
        FROM_DB.append(True)
    if args.rtt:
        rtt_bench(args.rtt, 5_000 if not args.quick else 600, args.one_click)
        return
    if args.postgres:
        POSTGRES.append(args.postgres)
    if args.one_click:
        EXTRA_ENV.update(ONE_CLICK)
    if args.dkim:
        EXTRA_ENV.update(dkim_env(Path(tempfile.mkdtemp())))
    if args.verp:
        EXTRA_ENV.update(VERP)
    small, large, naive_count = (2_000, 20_000, 300) if args.quick else (10_000, 100_000, 1_000)
    if args.subscribers:
        small, large = args.subscribers, 10 * args.subscribers
    sink = Sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            folder = make_folder(root, small)
            message, sender = sample_message(folder)
            print(
                f"sink: {sink.name}; message {len(message):,} bytes; {CONNECTIONS} connections"
                + ("; one-click unsubscribe URLs" if args.one_click else "")
                + ("; a VERP envelope sender per message" if args.verp else "")
                + ("; state on PostgreSQL" if args.postgres else "; state in SQLite")
                + ("; list imported into the database beforehand, no CSV" if args.from_db else ""),
                flush=True,
            )
            # The machine may be shared: (a) and (b) alternate, and each keeps its best run.
            a_runs: list[float] = []
            b_runs: list[SendRun] = []
            other_runs: list[SendRun] = []
            for _ in range(max(1, args.repeat)):
                a_runs.append(asyncio.run(ceiling(sink, message, sender, small)))
                b_runs.append(newsletter_send(sink, folder, small))
                print(
                    f"  (a) {a_runs[-1]:,.0f} msg/s; (b) {b_runs[-1].rate_wall:,.0f} msg/s whole process "
                    f"({b_runs[-1].wall:.2f}s), {b_runs[-1].rate_sending:,.0f} while sending",
                    flush=True,
                )
                if args.against:
                    other = newsletter_send(sink, folder, small, args.against)
                    other_runs.append(other)
                    print(
                        f"      (b) of {args.against}: {other.rate_wall:,.0f} msg/s whole process, "
                        f"{other.rate_sending:,.0f} while sending; peak RSS {other.peak_rss_mb:.1f} MB",
                        flush=True,
                    )
            a = max(a_runs)
            b = max(b_runs, key=lambda r: r.rate_wall)
            b_sending = max(r.rate_sending for r in b_runs)
            print(f"(a) ceiling, raw aiosmtplib, {small:,} prebuilt messages: {a:,.0f} msg/s", flush=True)
            print(
                f"(b) newsletter send, {small:,} subscribers: {b.rate_wall:,.0f} msg/s over the whole process "
                f"({b.wall:.2f}s), {b_sending:,.0f} msg/s while sending; peak RSS {b.peak_rss_mb:.1f} MB",
                flush=True,
            )
            c = naive(sink, folder, naive_count)
            print(f"(c) naive, {naive_count:,} subscribers: {c:,.0f} msg/s", flush=True)
            big = newsletter_send(sink, make_folder(root, large), large)
            print(
                f"(b) newsletter send, {large:,} subscribers: {big.rate_wall:,.0f} msg/s whole process "
                f"({big.wall:.1f}s), {big.rate_sending:,.0f} while sending; peak RSS {big.peak_rss_mb:.1f} MB",
                flush=True,
            )
    finally:
        sink.close()
    print()
    if other_runs:
        o = max(other_runs, key=lambda r: r.rate_wall)
        o_sending = max(r.rate_sending for r in other_runs)
        print(
            f"this checkout / {args.against}: {b.rate_wall / o.rate_wall:.3f} (whole process), "
            f"{b_sending / o_sending:.3f} (sending phase); peak RSS {b.peak_rss_mb:.1f} / {o.peak_rss_mb:.1f} MB"
        )
    print(f"b/a = {b.rate_wall / a:.2f} (whole process), {b_sending / a:.2f} (sending phase)   target >= 0.8")
    print(
        f"      at {large:,}: {big.rate_wall / a:.2f} (whole process), {big.rate_sending / a:.2f} (sending phase); "
        f"start-up, render and list import are a fixed cost"
    )
    print(f"b/c = {b.rate_wall / c:.1f}   target >= 5")
    ratio = big.peak_rss_mb / b.peak_rss_mb
    print(
        f"RSS({large:,}) / RSS({small:,}) = {big.peak_rss_mb:.1f} / {b.peak_rss_mb:.1f} MB = {ratio:.2f}  target <= 1.3"
    )


def rtt_bench(rtt_ms: float, count: int, one_click: bool) -> None:
    """(a) with today's 4 connections and (b) with its default settings, both through the round-trip proxy."""
    if one_click:
        EXTRA_ENV.update(ONE_CLICK)
    DEFAULT_CONNECTIONS.append(True)
    sink = Sink()
    try:
        sink.behind_proxy(rtt_ms)
        with tempfile.TemporaryDirectory() as tmp:
            folder = make_folder(Path(tmp), count)
            message, sender = sample_message(folder)
            print(f"sink: {sink.name}; {count:,} messages of {len(message):,} bytes", flush=True)
            a = asyncio.run(ceiling(sink, message, sender, count))
            print(f"(a) raw aiosmtplib, {CONNECTIONS} connections: {a:,.0f} msg/s", flush=True)
            b = newsletter_send(sink, folder, count)
            print(
                f"(b) newsletter send, default settings: {b.rate_wall:,.0f} msg/s whole process, "
                f"{b.rate_sending:,.0f} while sending",
                flush=True,
            )
    finally:
        sink.close()
    print(
        f"b/a at {rtt_ms:g} ms = {b.rate_wall / a:.2f} (whole process), {b.rate_sending / a:.2f} (sending)"
        f"   target >= 3"
    )


if __name__ == "__main__":
    main()
