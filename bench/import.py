"""Benchmark: importing a 1,000,000-row list into the state database; time and peak RSS against `subscribers check`.

    python bench/import.py [--rows 1000000] [--repeat 2] [--postgres URL]

Uses the list bench/subscribers.py generates (bench/out/subscribers-<rows>.csv, reused when present:
a realistic mix of domains, non-ASCII names, extra columns, one bad row in 10,000, one in ten
unsubscribed or bounced). Each measurement is a separate process, so its peak RSS is its own; all of
them run in this session on the same file, `--repeat` times interleaved (the machine may be shared),
and each keeps its best run:

- baseline: `newsletter subscribers check` (read and validate every row, write nothing);
- `newsletter subscribers import FILE` into a new state database (every row added or suppressed);
- the same import again (every row already there: read, compare, write nothing);
- the CSV sync a send does first, with the file as [paths] subscribers, into a new database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pgdb import new_database  # noqa: E402
from bench.subscribers import OUT, generate, measure  # noqa: E402

POSTGRES: list[str] = []


def fresh_state(folder: Path) -> str:
    """A new state database: the SQLite file removed, or a new PostgreSQL database; its [paths] state."""
    for leftover in folder.glob("bench-import.db*"):
        leftover.unlink()
    if not POSTGRES:
        return "bench-import.db"
    return new_database(POSTGRES[0], "nl_bench_import")


def configure(folder: Path, subscribers: str, state: str) -> None:
    (folder / "newsletter.toml").write_text(f'[paths]\nsubscribers = "{subscribers}"\nstate = "{state}"\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server the bench may create databases on")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every measurement, interleaved; best of each")
    args = parser.parse_args()
    if args.postgres:
        POSTGRES.append(args.postgres)
    OUT.mkdir(parents=True, exist_ok=True)
    csv_path = OUT / f"subscribers-{args.rows}.csv"
    if not csv_path.exists():
        print(f"generating {csv_path} ...", flush=True)
        generate(csv_path, args.rows)
    folder = OUT / "import"
    folder.mkdir(exist_ok=True)
    where = "PostgreSQL" if POSTGRES else "SQLite"
    size = csv_path.stat().st_size / 1e6
    print(f"{args.rows:,} rows, {size:,.0f} MB; state in {where}; python {sys.version.split()[0]}")

    runs: dict[str, list[tuple[float, float, int]]] = {}

    def keep(label: str, result: tuple[float, float, int]) -> None:
        runs.setdefault(label, []).append(result)
        print(f"  {label}: {result[0]:.2f}s, {result[1]:.0f} MB", flush=True)

    for _ in range(max(1, args.repeat)):
        configure(folder, str(csv_path), fresh_state(folder))
        keep("floor", measure(["-c", "import newsletter.cli"], folder))
        keep("check", measure(["-m", "newsletter", "subscribers", "check"], folder))
        configure(folder, str(folder / "none.csv"), fresh_state(folder))
        keep("first", measure(["-m", "newsletter", "subscribers", "import", str(csv_path)], folder))
        keep("again", measure(["-m", "newsletter", "subscribers", "import", str(csv_path)], folder))
        configure(folder, str(csv_path), fresh_state(folder))
        keep("sync", measure(["-m", "newsletter", "subscribers", "import"], folder))
    floor, check, first, again, sync = (min(runs[k]) for k in ("floor", "check", "first", "again", "sync"))

    print(f"{'':44}{'seconds':>9}{'peak RSS MB':>13}{'x check':>9}")
    rows = [
        ("interpreter + package import", floor),
        ("subscribers check (baseline)", check),
        ("subscribers import FILE, new database", first),
        ("the same import again (all unchanged)", again),
        ("CSV sync before a send, new database", sync),
    ]
    for label, (seconds, rss, _code) in rows:
        print(f"{label:44}{seconds:9.2f}{rss:13.0f}{seconds / check[0]:9.2f}")
    print(
        f"import: {(first[0] - floor[0]) / args.rows * 1e6:.1f} µs/row; peak RSS {first[1] - floor[1]:.0f} MB "
        f"above the import floor (check: {check[1] - floor[1]:.0f} MB): flat in the list's size"
    )


if __name__ == "__main__":
    main()
