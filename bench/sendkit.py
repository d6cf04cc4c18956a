"""What bench/send.py measures with: the sink, the list folders, the three senders (a), (b) and (c).

(a) raw aiosmtplib pushing one prebuilt message over 4 connections (the ceiling of a Python client),
(b) `newsletter send` as a subprocess (its wall time, CPU time and peak RSS from os.wait4), and
(c) a naive sender (Jinja2 + premailer + EmailMessage per subscriber, smtplib, one connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.pgdb import new_database  # noqa: E402
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
# A set-up `send` accepts for a list send over SMTP (newsletter doctor: no example From or postal address).
SETUP = {
    "NEWSLETTER_NEWSLETTER_FROM": "Privacy Notes <newsletter@privacy-notes.news>",
    "NEWSLETTER_NEWSLETTER_POSTAL_ADDRESS": "Privacy Notes, 12 Chausseestraße, 10115 Berlin, Germany",
}
EXTRA_ENV: dict[str, str] = dict(SETUP)
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
        "NEWSLETTER_DKIM_DOMAIN": "privacy-notes.news",
        "NEWSLETTER_DKIM_SELECTOR": "bench",
        "NEWSLETTER_DKIM_KEY_FILE": str(path),
    }


def fresh_state(folder: Path) -> dict[str, str]:
    """A new state database for a run: the SQLite file removed, or a new PostgreSQL database."""
    for leftover in folder.glob("newsletter.db*"):
        leftover.unlink()
    if not POSTGRES:
        return {}
    return {"NEWSLETTER_PATHS_STATE": new_database(POSTGRES[0], "nl_bench")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, what: str) -> None:
    """Until something accepts connections on 127.0.0.1:`port` (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.05)


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
        _wait_for_port(self.port, f"the sink ({self.name})")

    def behind_proxy(self, rtt_ms: float) -> None:
        """From now on connections go through bench/rtt_proxy.py, which adds `rtt_ms` per round trip."""
        target, self.port = self.port, free_port()
        proxy = [sys.executable, str(REPO / "bench" / "rtt_proxy.py"), str(self.port), str(target), str(rtt_ms)]
        self.proxy = subprocess.Popen(proxy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.name += f" behind a {rtt_ms:g} ms round-trip proxy"
        _wait_for_port(self.port, "the round-trip proxy")

    def close(self) -> None:
        if getattr(self, "proxy", None) is not None:
            self.proxy.terminate()
            self.proxy.wait(timeout=10)
        self.proc.terminate()
        self.proc.wait(timeout=10)


def make_folder(root: Path, count: int, tree: Path | None = None) -> Path:
    """A newsletter folder with `count` subscribers (made once per size, checkout and run).

    `tree`: another checkout (--against) gets a folder of its own files, since this checkout's theme
    and config may use fields the other does not know.
    """
    folder = root / (f"letter-{count}" if tree is None else f"letter-{count}-{tree.name}")
    if (folder / "subscribers.csv").exists():
        return folder
    if tree is None:
        init_folder(folder)
    else:  # the checkout is itself a newsletter folder: its own config, theme and the article sent
        folder.mkdir(parents=True)
        shutil.copyfile(tree / "newsletter.toml", folder / "newsletter.toml")
        shutil.copytree(tree / "templates", folder / "templates")
        (folder / "issues").mkdir()
        shutil.copyfile(tree / "issues" / f"{ARTICLE}.md", folder / "issues" / f"{ARTICLE}.md")
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
    cpu_ms: float = 0.0  # the process's user + system CPU time per message


class FirstMessage:
    """A pass-through proxy in front of the sink that notes when the first message's final dot arrives."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.first_at: float | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, watch: bool) -> None:
            tail = b""
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if watch and self.first_at is None and b"\r\n.\r\n" in tail + data:
                        self.first_at = time.perf_counter()
                    tail = data[-4:]
                    dst.write(data)
                    await dst.drain()
            dst.close()

        with contextlib.suppress(asyncio.CancelledError):  # the proxy closing with the connection still open
            await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False), return_exceptions=True)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def first_message_after(sink: Sink, folder: Path, count: int, timeout: float = 120) -> float:
    """Seconds from starting `newsletter send` to the first message's end at the sink; the send is then killed."""
    proxy = FirstMessage(sink.port)
    env = {**env_for(sink, folder), **fresh_state(folder), "NEWSLETTER_SMTP_PORT": str(proxy.port)}
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "send", ARTICLE, "--yes"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proxy.first_at is None and proc.poll() is None and time.perf_counter() - start < timeout:
            time.sleep(0.005)
        proc.kill()
        proc.wait()
        if proxy.first_at is None:
            raise SystemExit(f"no message reached the sink within {timeout:.0f} s of starting the send")
        return proxy.first_at - start
    finally:
        proxy.close()


def newsletter_send(
    sink: Sink, folder: Path, count: int, tree: Path = REPO, extra: dict[str, str] | None = None
) -> SendRun:
    """(b) the real command in a subprocess; its exact wall time and peak RSS from os.wait4 (its own rusage).

    `tree`: the checkout whose package runs (another one for a before/after comparison).
    """
    state = fresh_state(folder)  # a fresh campaign each time
    env = {**env_for(sink, folder), **state, "PYTHONPATH": str(tree.resolve()), **(extra or {})}
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
    cpu = (usage.ru_utime + usage.ru_stime) * 1000 / count
    return SendRun(count / wall, rate, usage.ru_maxrss / 1024, wall, cpu)


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
