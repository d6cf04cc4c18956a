"""Benchmark of `newsletter send` against a local SMTP sink, with its ceiling and a naive baseline.

    python bench/send.py            # 1,000, 10,000 and 100,000 subscribers (--large: 1,000,000 too)
    python bench/send.py --quick    # 1,000 and 10,000
    python bench/send.py --against ../old-checkout
                                    # (b) of another checkout interleaved with this one's: before/after
    python bench/send.py --rtt 20   # a relay 20 ms away (bench/rtt_proxy.py in front of the sink):
                                    # (a) with 4 connections against (b) with its default settings
    python bench/send.py --dkim     # (b) DKIM-signed (RSA-2048) against (b) unsigned, interleaved
    python bench/send.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
                                    # (b) on PostgreSQL: a new database per run, made on that server
    python bench/send.py --verp     # (b) with [bounces] address: a signed envelope sender per message
    python bench/send.py --from-db  # (b) with the list already in the state database, no CSV
    python bench/send.py --one-click  # personal signed unsubscribe URLs in every message

The sink is Postfix's smtp-sink when installed (apt-get install postfix), else an aiosmtpd sink in
its own process (bench/sink.py). For each list size it prints (a) the raw-client ceiling, (b)
`newsletter send` (whole process and sending phase, CPU ms per message, peak RSS, and the time from
starting the command to the first message at the sink), and b/a; (c) the naive sender once, and
b/c. (a) and (b) alternate `--repeat` times at the small sizes and keep their best run, since the
machine may be shared. Targets: b/a >= 1.2 (whole process) at 10,000 and 100,000, >= 0.8 at 1,000;
first message <= 2 s at 1,000,000; peak RSS <= 100 MB at 1,000,000; b/c >= 5.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sendkit import (
    CONNECTIONS,
    DEFAULT_CONNECTIONS,
    EXTRA_ENV,
    FROM_DB,
    ONE_CLICK,
    POSTGRES,
    VERP,
    SendRun,
    Sink,
    ceiling,
    dkim_env,
    first_message_after,
    make_folder,
    naive,
    newsletter_send,
    sample_message,
)

CEILING_MAX = 20_000  # (a) runs at most this many messages: its rate does not depend on the list's size


@dataclass
class Row:
    count: int
    a: float
    b: SendRun
    b_sending: float
    first: float


def measure(sink: Sink, root: Path, count: int, repeat: int, against: Path | None) -> tuple[Row, SendRun | None]:
    folder = make_folder(root, count)
    message, sender = sample_message(folder)
    runs = repeat if count <= 10_000 else 1
    a_runs: list[float] = []
    b_runs: list[SendRun] = []
    other: list[SendRun] = []
    for _ in range(runs):
        a_runs.append(asyncio.run(ceiling(sink, message, sender, min(count, CEILING_MAX))))
        b_runs.append(newsletter_send(sink, folder, count))
        if against is not None:
            other.append(newsletter_send(sink, make_folder(root, count, against), count, against))
    first = first_message_after(sink, folder, count)
    b = max(b_runs, key=lambda r: r.rate_wall)
    row = Row(count, max(a_runs), b, max(r.rate_sending for r in b_runs), first)
    print(
        f"  {count:>9,}: (a) {row.a:,.0f} msg/s; (b) {b.rate_wall:,.0f} whole process, {row.b_sending:,.0f} sending, "
        f"{b.cpu_ms:.2f} CPU ms/msg, {b.peak_rss_mb:.1f} MB, first message after {first:.2f} s",
        flush=True,
    )
    return row, (max(other, key=lambda r: r.rate_wall) if other else None)


def table(sizes: list[int], repeat: int, naive_count: int, against: Path | None, label: str) -> None:
    sink = Sink()
    rows: list[Row] = []
    others: list[SendRun | None] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            message, _sender = sample_message(make_folder(root, 10))
            print(f"sink: {sink.name}; message {len(message):,} bytes; (a) {CONNECTIONS} connections{label}")
            for count in sizes:
                row, other = measure(sink, root, count, repeat, against)
                rows.append(row)
                others.append(other)
            c = naive(sink, make_folder(root, naive_count), naive_count)
    finally:
        sink.close()
    print()
    columns = ["subscribers", "(a) msg/s", "(b) whole process", "(b) sending", "b/a whole", "b/a sending"]
    columns += ["CPU ms/msg", "peak RSS", "first message"]
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    for r in rows:
        print(
            f"| {r.count:,} | {r.a:,.0f} | {r.b.rate_wall:,.0f} | {r.b_sending:,.0f} | {r.b.rate_wall / r.a:.2f} | "
            f"{r.b_sending / r.a:.2f} | {r.b.cpu_ms:.2f} | {r.b.peak_rss_mb:.1f} MB | {r.first:.2f} s |"
        )
    mid = next((r for r in rows if r.count == 10_000), rows[-1])
    print(f"\n(c) naive, {naive_count:,} subscribers: {c:,.0f} msg/s; b/c at {mid.count:,} = {mid.b.rate_wall / c:.1f}")
    for r, o in zip(rows, others, strict=True):
        if o is not None:
            print(
                f"this checkout / {against} at {r.count:,}: {r.b.rate_wall / o.rate_wall:.3f} (whole process), "
                f"{r.b_sending / o.rate_sending:.3f} (sending); peak RSS {r.b.peak_rss_mb:.1f} / {o.peak_rss_mb:.1f} MB"
            )


def dkim_bench(count: int, rtt_ms: float | None, repeat: int) -> None:
    """(b) unsigned and (b) RSA-2048-signed, alternating `repeat` times, each keeping its best run."""
    if rtt_ms:
        DEFAULT_CONNECTIONS.append(True)
    sink = Sink()
    try:
        if rtt_ms:
            sink.behind_proxy(rtt_ms)
        with tempfile.TemporaryDirectory() as tmp:
            folder = make_folder(Path(tmp), count)
            signed_env = dkim_env(Path(tmp))
            connections = "default connections" if rtt_ms else f"{CONNECTIONS} connections"
            print(f"sink: {sink.name}; {count:,} messages; {connections}; RSA-2048 against unsigned", flush=True)
            plain: list[SendRun] = []
            signed: list[SendRun] = []
            for _ in range(repeat):
                plain.append(newsletter_send(sink, folder, count))
                signed.append(newsletter_send(sink, folder, count, extra=signed_env))
                print(
                    f"  unsigned {plain[-1].rate_wall:,.0f} msg/s whole process, {plain[-1].rate_sending:,.0f} while "
                    f"sending; signed {signed[-1].rate_wall:,.0f} / {signed[-1].rate_sending:,.0f}",
                    flush=True,
                )
    finally:
        sink.close()
    p, d = max(plain, key=lambda r: r.rate_wall), max(signed, key=lambda r: r.rate_wall)
    p_sending, d_sending = max(r.rate_sending for r in plain), max(r.rate_sending for r in signed)
    print(f"unsigned: {p.rate_wall:,.0f} msg/s whole process ({p.wall:.2f}s), {p_sending:,.0f} while sending")
    print(f"signed:   {d.rate_wall:,.0f} msg/s whole process ({d.wall:.2f}s), {d_sending:,.0f} while sending")
    print(
        f"signed/unsigned = {d.rate_wall / p.rate_wall:.2f} (whole process), {d_sending / p_sending:.2f} (sending)"
        f"   target >= 0.9"
    )


def rtt_bench(rtt_ms: float, count: int) -> None:
    """(a) with today's 4 connections and (b) with its default settings, both through the round-trip proxy."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 subscribers only")
    parser.add_argument("--large", action="store_true", help="1,000,000 subscribers too")
    parser.add_argument("--repeat", type=int, default=3, help="runs of (a) and (b) at the small sizes; best of each")
    parser.add_argument("--one-click", action="store_true", help="personal signed unsubscribe URLs in every message")
    parser.add_argument("--postgres", metavar="URL", help="(b) on PostgreSQL: a server the bench may create DBs on")
    parser.add_argument("--verp", action="store_true", help="(b) with a bounce address: a VERP sender per message")
    parser.add_argument("--against", metavar="DIR", type=Path, help="also (b) of another checkout, interleaved")
    parser.add_argument("--dkim", action="store_true", help="(b) signed with DKIM (RSA-2048) against unsigned")
    parser.add_argument("--rtt", type=float, metavar="MS", help="a relay this many ms away")
    parser.add_argument("--from-db", action="store_true", help="(b) from a list imported into the database first")
    args = parser.parse_args()
    label = ""
    if args.one_click:
        EXTRA_ENV.update(ONE_CLICK)
        label += "; one-click unsubscribe URLs"
    if args.verp:
        EXTRA_ENV.update(VERP)
        label += "; a VERP envelope sender per message"
    if args.from_db:
        FROM_DB.append(True)
        label += "; the list imported into the database first"
    if args.postgres:
        POSTGRES.append(args.postgres)
        label += "; state on PostgreSQL"
    if args.dkim:
        count = 2_000 if args.quick else 10_000
        dkim_bench(count if not args.rtt else count // 2, args.rtt, max(1, args.repeat))
        return
    if args.rtt:
        rtt_bench(args.rtt, 600 if args.quick else 5_000)
        return
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    if args.large:
        sizes.append(1_000_000)
    table(sizes, max(1, args.repeat), 300 if args.quick else 1_000, args.against, label)


if __name__ == "__main__":
    main()
