"""The fault matrix: `newsletter send` against SMTP servers that misbehave, killed runs, broken lists, lost state.

    python bench/chaos.py [--subscribers 1000] [--kills 10] [--only quota-rcpt,stall] [--repo PATH]

Each row is one fault (bench/faults.py: a real aiosmtpd behind a TCP proxy on 127.0.0.1). The first
`newsletter send ISSUE --yes` (a real process) meets the fault; then the operator "fixes" it (the
quota resets, the server answers again, the list file is repaired, the database restored) and runs
the same command again, up to three times, while the campaign is not finished, as the messages tell
them to. The table counts, over every copy the server took: subscribers who got the issue exactly
once, extra copies (and how many of those carry the Message-ID of the first, so receivers drop
them), subscribers who never got it, addresses suppressed though their mailbox is fine, the
campaign's final state and each run's exit status. A run still going after `--cap` seconds is
killed and shown as "killed".

`--repo PATH` runs another checkout (PYTHONPATH), so the same command measures before and after;
nothing of the package is imported here.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faults import Fault, FaultyServer, Proxy

ARTICLE = "2026-11-23-welcome"


@dataclass
class Outcome:
    exits: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    once: int = 0
    expected: int = 0
    duplicates: int = 0
    same_id: int = 0
    misses: int = 0
    wrongly_suppressed: int = 0


class Letter:
    """A newsletter folder made by `newsletter init` with `subscribers` people, sending to `port`."""

    def __init__(self, root: Path, args: argparse.Namespace, port: int) -> None:
        self.root, self.repo, self.cap = root, args.repo, args.cap
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
        self.env.update(
            {
                "PYTHONPATH": str(self.repo),
                "NEWSLETTER_DELIVERY_BACKEND": "smtp",
                "NEWSLETTER_SMTP_HOST": "127.0.0.1",
                "NEWSLETTER_SMTP_PORT": str(port),
                "NEWSLETTER_SMTP_SECURITY": "none",
                "NEWSLETTER_SMTP_CONNECTIONS": "4",
                "NEWSLETTER_SMTP_TIMEOUT": "5",
                "NEWSLETTER_SMTP_RETRY_BASE_DELAY": "0.2",
                "NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv",
                # A set-up a list send over SMTP accepts (newsletter doctor: no example From or postal address).
                "NEWSLETTER_NEWSLETTER_FROM": "Privacy Notes <newsletter@privacy-notes.news>",
                "NEWSLETTER_NEWSLETTER_POSTAL_ADDRESS": "Privacy Notes, 12 Chausseestraße, 10115 Berlin, Germany",
            }
        )
        if "stall_timeout" in (self.repo / "newsletter" / "config" / "sections.py").read_text():
            self.env["NEWSLETTER_SMTP_STALL_TIMEOUT"] = "15s"
        subprocess.run(self.command("init", str(root)), env=self.env, check=True, capture_output=True)
        self.addresses = [f"reader{i:05d}@example.org" for i in range(args.subscribers)]
        self.csv = "email,name\n" + "".join(f"{a},Reader {i}\n" for i, a in enumerate(self.addresses))
        (root / "subscribers.csv").write_text(self.csv, encoding="utf-8")
        self.outcome = Outcome()

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "newsletter", *args]

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.command(*args), cwd=self.root, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def send(self, *extra: str) -> str:
        """`send ISSUE --yes` to the end (or `cap`); its exit status as text, recorded."""
        proc = self.start("send", ARTICLE, "--yes", *extra)
        try:
            code = str(proc.wait(timeout=self.cap))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = f"killed at {self.cap:.0f}s"
        self.outcome.exits.append(code)
        return code

    def interrupt(self, server: FaultyServer, at: int, sig: int) -> None:
        """A send stopped by `sig` once the server has taken `at` messages (SIGTERM: graceful, SIGKILL: a crash)."""
        proc = self.start("send", ARTICLE, "--yes")
        deadline = time.monotonic() + self.cap
        while server.taken() < at and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(sig)
        proc.wait()
        self.outcome.exits.append("killed" if sig == signal.SIGKILL else str(proc.returncode))

    def query(self, sql: str) -> list[tuple[object, ...]]:
        path = self.root / "newsletter.db"
        if not path.exists():
            return []
        with sqlite3.connect(path) as conn:
            try:
                return list(conn.execute(sql))
            except sqlite3.Error:
                return []

    def state(self) -> str:
        rows = self.query(f"SELECT status FROM campaigns WHERE key = '{ARTICLE}' ORDER BY id DESC LIMIT 1")
        return str(rows[0][0]) if rows else "no campaign"

    def resume(self, fix: Callable[[], None] | None = None, times: int = 3) -> None:
        """The operator fixes the fault and runs the same command again while the campaign is not finished."""
        if fix is not None:
            fix()
        for _ in range(times):
            if self.state() == "finished":
                return
            self.send()

    def score(self, server: FaultyServer, expected: set[str], refused: frozenset[str] = frozenset()) -> Outcome:
        out = self.outcome
        got, ids = server.counts(), server.message_ids()
        out.expected = len(expected)
        out.once = sum(1 for a in expected if got[a] == 1)
        out.duplicates = sum(n - 1 for n in got.values() if n > 1)
        out.same_id = sum(n - 1 for a, n in got.items() if n > 1 and len(ids[a]) == 1)
        out.misses = sum(1 for a in expected if got[a] == 0)
        suppressed = {str(r[0]) for r in self.query("SELECT email FROM suppressions")}
        out.wrongly_suppressed = len(suppressed - refused)
        out.states.append(self.state())
        return out


def smtp_row(kind: str, args: argparse.Namespace, root: Path, **fault_args: object) -> Outcome:
    """One fault of the server or the network: the first run meets it, then it is fixed and the run resumed."""
    rng = random.Random(args.seed)
    fault = Fault(kind=kind, **fault_args)  # type: ignore[arg-type]
    with FaultyServer(fault) as server, Proxy(server.port, args.seed) as proxy:
        letter = Letter(root, args, proxy.port)
        if kind in ("550", "552"):
            fault.refuse = frozenset(rng.sample(letter.addresses, max(1, len(letter.addresses) // 50)))
        if kind in ("quota-rcpt", "quota-data"):
            fault.after = len(letter.addresses) * 6 // 10
        if kind in ("down", "hang", "cut"):
            proxy.set_mode(kind)
        if kind == "dies":  # down for 3 s once 30% went out, then back
            threading.Thread(target=die_and_return, args=(server, proxy, len(letter.addresses) * 3 // 10)).start()
        letter.send()

        def fix() -> None:
            fault.clear()
            proxy.set_mode("pass")

        letter.resume(fix)
        refused = fault.refuse if kind == "550" else frozenset()
        return letter.score(server, set(letter.addresses) - refused, refused)


def die_and_return(server: FaultyServer, proxy: Proxy, at: int) -> None:
    deadline = time.monotonic() + 60
    while server.taken() < at and time.monotonic() < deadline:
        time.sleep(0.005)
    proxy.set_mode("down")
    time.sleep(3)
    proxy.set_mode("pass")


def kills_row(args: argparse.Namespace, root: Path) -> Outcome:
    """`--kills` sends, each killed with SIGKILL at a random point and resumed."""
    rng = random.Random(args.seed)
    total = Outcome()
    for trial in range(args.kills):
        with FaultyServer(Fault(), delay=0.01) as server:
            letter = Letter(root / f"kill-{trial}", args, server.port)
            letter.interrupt(server, rng.randint(len(letter.addresses) // 10, len(letter.addresses) * 8 // 10), 9)
            server.delay = 0.0
            letter.resume()
            add(total, letter.score(server, set(letter.addresses)))
    return total


def add(total: Outcome, one: Outcome) -> None:
    total.exits.append(", ".join(one.exits))
    total.states += one.states
    for name in ("once", "expected", "duplicates", "same_id", "misses", "wrongly_suppressed"):
        setattr(total, name, getattr(total, name) + getattr(one, name))


def nothing() -> None:
    pass


def list_row(kind: str, args: argparse.Namespace, root: Path) -> Outcome:
    """A broken list or lost state between runs: the send after it, then the operator's fix and a resume."""
    with FaultyServer(Fault(), delay=0.005) as server:
        letter = Letter(root, args, server.port)
        expected = set(letter.addresses)
        csv = root / "subscribers.csv"
        db = root / "newsletter.db"
        backup = root / "backup.db"
        fix: Callable[[], None] = nothing
        if kind == "stray-quote":  # one opening quote on line 11 and no closing one
            lines = letter.csv.splitlines(keepends=True)
            lines[10] = lines[10].replace(",Reader", ',"Reader')
            csv.write_text("".join(lines), encoding="utf-8")
            fix = lambda: csv.write_text(letter.csv, encoding="utf-8")  # noqa: E731
        else:
            stop = signal.SIGKILL if kind == "edited" else signal.SIGTERM
            letter.interrupt(server, len(letter.addresses) * 4 // 10, stop)
            server.delay = 0.0
            if kind == "emptied":  # the file is being rewritten; one subscriber came from elsewhere
                add = letter.command("subscribers", "add", "extra@example.com")
                subprocess.run(add, cwd=root, env=letter.env, capture_output=True, check=True)
                expected.add("extra@example.com")
                csv.write_text("email,name\n", encoding="utf-8")
                fix = lambda: csv.write_text(letter.csv, encoding="utf-8")  # noqa: E731
            elif kind == "deleted":
                with sqlite3.connect(db) as src, sqlite3.connect(backup) as dst:
                    src.backup(dst)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)

                def fix() -> None:
                    if letter.state() == "no campaign":  # the send refused: restore the backup
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{db}{suffix}").unlink(missing_ok=True)
                        shutil.copy(backup, db)

            elif kind == "edited":
                article = next((root / "issues").glob(f"{ARTICLE}.md"))
                article.write_text(article.read_text(encoding="utf-8") + "\nA correction.\n", encoding="utf-8")
        letter.send()
        letter.resume(fix)
        return letter.score(server, expected)


ROWS: list[tuple[str, str, Callable[[argparse.Namespace, Path], Outcome]]] = [
    ("accept", "the server takes everything", lambda a, r: smtp_row("accept", a, r)),
    ("close-after-data", "every 50th message taken, then the connection closed before the reply",
     lambda a, r: smtp_row("close-after-data", a, r)),
    ("cut", "30% of connections cut at random, mostly mid-message", lambda a, r: smtp_row("cut", a, r)),
    ("421", "421 at every 10th RCPT", lambda a, r: smtp_row("421", a, r)),
    ("greylist", "451 4.7.1 greylisting: every address refused for its first 0.5 s",
     lambda a, r: smtp_row("greylist", a, r)),
    ("550", "550 5.1.1 for 2% of the addresses", lambda a, r: smtp_row("550", a, r)),
    ("quota-rcpt", "550 5.4.5 daily quota after 60% of the list, at RCPT", lambda a, r: smtp_row("quota-rcpt", a, r)),
    ("quota-data", "550 5.4.5 daily quota after 60% of the list, at DATA", lambda a, r: smtp_row("quota-data", a, r)),
    ("552", "552 5.2.2 mailbox full for 2% of the addresses", lambda a, r: smtp_row("552", a, r)),
    ("hang", "accepts connections, never greets", lambda a, r: smtp_row("hang", a, r)),
    ("stall", "greets, never answers DATA", lambda a, r: smtp_row("hang-data", a, r)),
    ("down", "down when the send starts", lambda a, r: smtp_row("down", a, r)),
    ("dies", "dies after 30% of the list, back 3 s later", lambda a, r: smtp_row("dies", a, r)),
    ("kill", "SIGKILL at a random point, then the same command", kills_row),
    ("stray-quote", "a stray quote on line 11 of the CSV", lambda a, r: list_row("stray-quote", a, r)),
    ("emptied", "a header-only CSV when an interrupted send resumes", lambda a, r: list_row("emptied", a, r)),
    ("deleted", "the state database deleted after an interrupted send", lambda a, r: list_row("deleted", a, r)),
    ("edited", "the article edited between a SIGKILL and the resume", lambda a, r: list_row("edited", a, r)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--cap", type=float, default=90.0, help="seconds before a run is killed as stalled")
    parser.add_argument("--only", default="", help="comma-separated row names")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    args.repo = args.repo.resolve()
    only = set(filter(None, args.only.split(",")))
    print(f"{args.subscribers:,} subscribers, 4 connections, {args.repo}")
    print("| fault | trials | exit status of each run | final state | delivered once | duplicates (same Message-ID) "
          "| misses | suppressed wrongly |")
    print("|---|---|---|---|---|---|---|---|")
    for name, what, row in ROWS:
        if only and name not in only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"chaos-{name}-") as tmp:
            started = time.monotonic()
            out = row(args, Path(tmp) / "letter")
        trials = args.kills if name == "kill" else 1
        states = ", ".join(f"{s} ×{n}" if n > 1 else s for s, n in Counter(out.states).items())
        exits = "; ".join(out.exits) if name == "kill" else ", ".join(out.exits)
        print(f"| {what} | {trials} | {exits} | {states} | {out.once:,} / {out.expected:,} | {out.duplicates:,} "
              f"({out.same_id:,}) | {out.misses:,} | {out.wrongly_suppressed:,} |", flush=True)
        print(f"  ({name}: {time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
