"""Benchmark: `newsletter subscribers check` on a generated 1,000,000-row list; time and peak RSS.

    python bench/subscribers.py [--rows 1000000]

Writes bench/out/subscribers-<rows>.csv (git-ignored; reused when present) with a realistic mix of
domains (most rows on a few big providers, many on their own domain), non-ASCII names, extra
columns and one bad row in 10,000. Each measurement is a separate process, so its peak RSS is its
own; the baselines run in the same session on the same file:

- `python -c 'import newsletter.cli'`: the interpreter plus the package (the floor);
- a bare `csv.reader` pass: the cost of reading the file at all;
- "all in memory": reading every row into a list and a set of addresses (what streaming avoids).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
PROVIDERS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "gmx.de", "web.de", "icloud.com", "proton.me"]
NAMES = ["Ada Lovelace", "Grace Hopper", "Renée Ça Va", "Zoë Øster", "Mira Köhler", "Alan Turing", "", "Ολγα"]


def generate(path: Path, rows: int) -> None:
    rng = random.Random(5)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("email,name,status,subscribed_at,city,plan\n")
        for i in range(rows):
            domain = rng.choice(PROVIDERS) if rng.random() < 0.8 else f"site{rng.randrange(50_000)}.example.org"
            address = f"reader.{i}@{domain}"
            if i % 10_000 == 9_999:
                address = f"reader {i}@{domain}"  # invalid: a space
            status = "" if rng.random() < 0.9 else rng.choice(["active", "unsubscribed", "bounced"])
            fh.write(f"{address},{rng.choice(NAMES)},{status},2026-01-{1 + i % 28:02d},Town {i % 977},free\n")


def measure(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit status) of one child process (os.wait4: that child's own rusage)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    stderr = child.stderr.read() if child.stderr else ""
    _pid, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    if code not in (0, 1):
        raise SystemExit(f"{args}: exit {code}\n{stderr}")
    return elapsed, usage.ru_maxrss / 1024, code


BARE_CSV = "import csv,sys\nn=0\nfor row in csv.reader(open(sys.argv[1], encoding='utf-8', newline='')): n+=1\nprint(n)"
ALL_IN_MEMORY = (
    "import csv,sys\nrows=list(csv.DictReader(open(sys.argv[1], encoding='utf-8', newline='')))\n"
    "seen={r['email'].lower() for r in rows}\nprint(len(rows), len(seen))"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    OUT.mkdir(parents=True, exist_ok=True)
    csv_path = OUT / f"subscribers-{rows}.csv"
    if not csv_path.exists():
        print(f"generating {csv_path} ...")
        generate(csv_path, rows)
    folder = OUT / "letter"
    folder.mkdir(exist_ok=True)
    (folder / "newsletter.toml").write_text(f'[paths]\nsubscribers = "{csv_path}"\nstate = "bench.db"\n')
    size = csv_path.stat().st_size / 1e6
    print(f"{rows:,} rows, {size:,.0f} MB; python {sys.version.split()[0]}")

    floor = measure(["-c", "import newsletter.cli"], folder)
    bare = measure(["-c", BARE_CSV, str(csv_path)], folder)
    check = measure(["-m", "newsletter", "subscribers", "check"], folder)
    memory = measure(["-c", ALL_IN_MEMORY, str(csv_path)], folder)
    print(f"{'':34}{'seconds':>9}{'peak RSS MB':>13}")
    print(f"{'interpreter + package import':34}{floor[0]:9.2f}{floor[1]:13.0f}")
    print(f"{'bare csv.reader pass':34}{bare[0]:9.2f}{bare[1]:13.0f}")
    print(f"{'newsletter subscribers check':34}{check[0]:9.2f}{check[1]:13.0f}   (exit {check[2]})")
    print(f"{'all rows in memory (for contrast)':34}{memory[0]:9.2f}{memory[1]:13.0f}")
    per_row = (check[0] - floor[0]) / rows * 1e6
    print(
        f"check: {per_row:.1f} µs/row, {check[0] / bare[0]:.1f}x a bare csv pass; "
        f"{check[1] - floor[1]:.0f} MB above the import floor (all-in-memory: {memory[1] - floor[1]:.0f} MB)"
    )


if __name__ == "__main__":
    main()
