"""`newsletter feed pull` of a 500-entry feed, against baselines measured in the same run.

    python bench/feed.py [--entries 500] [--runs 3]

Makes a WordPress-style RSS 2.0 feed of N posts (each the body of tests/data/feeds/wordpress.xml's
longest post: headings, lists, an image, a quote, code and a table, about 3 KB of HTML), serves it
from a real HTTP server on 127.0.0.1, then measures, best of `--runs` each:

  (a) the first pull into an empty issues folder, in-process: fetch, parse, sanitize and convert
      every post, write N files, record N entries in the state database;
  (b) the same as a new process (`newsletter feed pull URL`, start-up included);
  (c) a second pull that reads the whole feed again and finds every post already pulled (`--since`
      turns off the conditional GET, so the feed is fetched and parsed, and nothing is written);
  (d) the floor: feedparser.parse of the same bytes alone;
  (e) nh3 + markdownify alone for every post (the conversion, no parse, no files, no database).

Each row is also given against (d) and (e): what the pull adds to parsing and converting is the
files, the state database and the checks. No timing is asserted anywhere; the ratios are for the
README and issue notes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import feedparser

from newsletter.cli.scaffold import init_folder
from newsletter.config import load_config
from newsletter.feed.convert import to_markdown
from newsletter.feed.pull import pull
from newsletter.state.engine import dispose_all

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "feeds" / "wordpress.xml"


def make_feed(count: int) -> bytes:
    text = FIXTURE.read_text(encoding="utf-8")
    head = text[: text.index("<item>")]
    body = re.search(r"<content:encoded><!\[CDATA\[(.*?)\]\]></content:encoded>", text, re.S)
    assert body is not None
    start = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
    items = []
    for i in range(count):
        when = format_datetime(start - dt.timedelta(hours=7 * i))
        items.append(
            f"<item><title>Post number {i}: passkeys, part {i}</title>"
            f"<link>https://blog.example.org/posts/{i}/</link><dc:creator><![CDATA[Mira Köhler]]></dc:creator>"
            f"<pubDate>{when}</pubDate><category><![CDATA[Security]]></category>"
            f'<guid isPermaLink="false">https://blog.example.org/?p={1000 + i}</guid>'
            f"<description><![CDATA[Part {i} of a long series on passkeys. [&hellip;]]]></description>"
            f"<content:encoded><![CDATA[{body.group(1)}]]></content:encoded></item>\n"
        )
    return (head + "".join(items) + "</channel>\n</rss>\n").encode()


def serve(data: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


def best(runs: int, setup: Callable[[], Any], work: Callable[[Any], object]) -> float:
    times = []
    for _ in range(runs):
        state = setup()
        start = time.perf_counter()
        work(state)
        times.append(time.perf_counter() - start)
    return min(times)


def fresh_folder(root: Path) -> Path:
    folder = Path(tempfile.mkdtemp(dir=root))
    init_folder(folder / "letter")
    for path in (folder / "letter" / "issues").glob("*.md"):
        path.unlink()
    return folder / "letter"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = make_feed(args.entries)
    server = serve(data)
    url = f"http://127.0.0.1:{server.server_address[1]}/feed/"
    env = {"NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin"}
    print(f"feed: {args.entries} posts, {len(data) / 1e6:.2f} MB, served at {url}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def config_for(folder: Path) -> Any:
            dispose_all()
            return load_config(folder / "newsletter.toml", env=env)

        def first_pull(folder: Path) -> None:
            report = pull(config_for(folder), url)
            assert len(report.written) == args.entries, report.summary()

        in_process = best(args.runs, lambda: fresh_folder(root), first_pull)

        def new_process(folder: Path) -> None:
            subprocess.run(
                [sys.executable, "-m", "newsletter", "feed", "pull", url],
                cwd=folder,
                env={**os.environ, **env},
                check=True,
                capture_output=True,
            )

        as_process = best(args.runs, lambda: fresh_folder(root), new_process)
        pulled = fresh_folder(root)
        first_pull(pulled)

        def again(folder: Path) -> None:
            report = pull(config_for(folder), url, since=dt.date(2000, 1, 1))
            assert report.unchanged == args.entries and not report.written, report.summary()

        second = best(args.runs, lambda: pulled, again)
    server.shutdown()
    options = {"sanitize_html": False, "resolve_relative_uris": False}  # as the pull parses
    parse_only = best(args.runs, lambda: None, lambda _: feedparser.parse(io.BytesIO(data), **options))
    parsed = feedparser.parse(io.BytesIO(data), **options)
    bodies = [(e.content[0].value, e.link) for e in parsed.entries]
    convert_only = best(args.runs, lambda: None, lambda _: [to_markdown(html, base) for html, base in bodies])
    n = args.entries
    rows = [
        ("(a) first pull, in-process", in_process),
        ("(b) first pull, new process", as_process),
        ("(c) second pull, all known", second),
        ("(d) feedparser.parse alone", parse_only),
        ("(e) nh3 + markdownify alone", convert_only),
    ]
    for name, seconds in rows:
        ratios = f"{seconds / parse_only:5.2f}x (d)   {seconds / convert_only:5.2f}x (e)"
        print(f"{name:32} {seconds:7.2f} s   {seconds / n * 1000:6.2f} ms a post   {ratios}")


if __name__ == "__main__":
    main()
