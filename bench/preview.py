"""Preview latency: from saving a 1,000-word article to its new HTML being ready (target < 100 ms).

    python bench/preview.py [--runs 20] [--articles 30]

In a temporary newsletter folder (made by `newsletter init`, plus --articles generated articles):

1. render alone, in-process: `Previewer.article(slug)` after the file changed (what the server does
   per save), against two baselines measured in the same run: `newsletter render` in a new process
   (the writer's loop without a preview server) and a naive re-render of every article (what a
   watcher that invalidates everything would do per save);
2. full pipeline through a real `newsletter preview` process: write the file -> watchfiles -> render
   -> server-sent event received by a client (and then the page's fetch of the new HTML).

Prints median and p95 per measure and the ratios. Nothing here is asserted; it is for the README.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from newsletter.cli.scaffold import init_folder
from newsletter.config import load_config
from newsletter.content.articles import load_article
from newsletter.web.preview_render import Previewer

ROOT = Path(__file__).resolve().parent.parent
SLUG = "2026-12-07-long-read"
WORD = re.compile(r"[\w’'-]+")  # as content.Article.words counts
PARAGRAPH = (
    "Every certificate in the chain is checked with care, and the **browser** keeps a list of roots it "
    "trusts; see [the RFC](https://www.rfc-editor.org/rfc/rfc5280) for the details of path validation. "
)


def long_article(marker: str, words: int = 1000) -> str:
    """A realistic 1,000-word article (as Article.words counts): headings, links, lists, code."""
    body: list[str] = [f"Revision {marker}.\n"]
    section = 0
    while len(WORD.findall("\n".join(body))) < words:
        if len(body) % 8 == 1:
            section += 1
            body.append(f"## Section {section}\n")
            body.append("- first point\n- second point with `code`\n- third point\n")
            body.append("```sh\nopenssl s_client -connect example.org:443\n```\n")
        body.append(PARAGRAPH + "\n")
    return (
        f"---\ntitle: A long read ({marker})\ndate: 2026-12-07\nauthor: Bench\nsummary: One thousand words.\n---\n\n"
        + "\n".join(body)
    )


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e3, p95 * 1e3


def line(label: str, samples: list[float]) -> float:
    med, p95 = stats(samples)
    print(f"  {label:58} median {med:7.1f} ms   p95 {p95:7.1f} ms   (n={len(samples)})")
    return med


def timed(fn: Callable[[int], object], runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def make_folder(root: Path, articles: int) -> Path:
    folder = root / "letter"
    init_folder(folder)
    for article in (ROOT / "issues").glob("*.md"):
        (folder / "issues" / article.name).write_bytes(article.read_bytes())
    for i in range(articles):
        text = f"---\ntitle: Filler {i}\ndate: 2026-10-{1 + i % 28:02d}\nsummary: s\n---\n\n" + PARAGRAPH * 20
        (folder / "issues" / f"2026-10-{1 + i % 28:02d}-filler-{i}.md").write_text(text)
    (folder / "issues" / f"{SLUG}.md").write_text(long_article("r0"))
    return folder


def bench_render(folder: Path, runs: int) -> float:
    print("render alone (in-process, the same calls the server makes):")
    config = load_config(folder / "newsletter.toml", env={})
    path = folder / "issues" / f"{SLUG}.md"
    words = load_article(path).words
    count = len(list(path.parent.glob("*.md")))
    print(f"  article: {words} words, {path.stat().st_size:,} bytes; folder: {count} articles")

    command = [sys.executable, "-m", "newsletter", "render", SLUG, "--out", str(folder / "build")]
    cold = timed(lambda i: subprocess.run(command, cwd=folder, check=True, capture_output=True), 3)
    previewer = Previewer(config, env={})
    previewer.article(SLUG)

    def save_and_render(i: int) -> None:
        path.write_text(long_article(f"r{i + 1}"))
        preview = previewer.article(SLUG)
        assert preview is not None and f"Revision r{i + 1}." in preview.html, "stale preview"

    incremental = timed(save_and_render, runs)
    everything = timed(lambda i: [Previewer(config, env={}).index()], max(3, runs // 4))
    unchanged = timed(lambda i: previewer.article(SLUG), runs)
    inc = line("save + re-render this article (cache miss)", incremental)
    line("request with nothing changed (cache hit: stat only)", unchanged)
    cold_med = line("baseline: `newsletter render` in a new process (no preview)", cold)
    all_med = line("baseline: naive re-render of every article", everything)
    print(f"  ratio: incremental is {cold_med / inc:.1f}x faster than cold, {all_med / inc:.0f}x than re-render-all")
    return all_med


def bench_pipeline(folder: Path, runs: int, naive_ms: float) -> None:
    print("full pipeline through `newsletter preview` (write -> watcher -> render -> SSE event):")
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", "--port", "8091"],
        cwd=folder,
        env={k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        match = re.match(r"Preview at (\S+)", proc.stdout.readline())
        assert match, "preview did not start"
        url = match.group(1)
        events: queue.Queue[float] = queue.Queue()
        connected = threading.Event()

        def listen() -> None:
            try:
                with httpx.stream("GET", f"{url}events", params={"slug": SLUG}, timeout=None) as response:
                    for text in response.iter_lines():
                        if text.startswith("event: hello"):
                            connected.set()
                        elif text.startswith("data: {"):
                            events.put(time.perf_counter())
            except httpx.HTTPError:
                pass  # the server stopped at the end of the run

        threading.Thread(target=listen, daemon=True).start()
        connected.wait(10)
        path = folder / "issues" / f"{SLUG}.md"
        with httpx.Client() as client:
            client.get(f"{url}issue/{SLUG}")  # the page is open: the server renders it on each save
            to_event: list[float] = []
            to_html: list[float] = []
            for i in range(runs):
                time.sleep(0.3)  # let the previous save settle, as between two real saves
                while not events.empty():
                    events.get_nowait()
                start = time.perf_counter()
                path.write_text(long_article(f"p{i}"))
                received = events.get(timeout=10)
                html = client.get(f"{url}issue/{SLUG}/email.html").text
                done = time.perf_counter()
                assert f"Revision p{i}." in html, "the event came before the new HTML was ready"
                to_event.append(received - start)
                to_html.append(done - start)
        event_med = line("save -> event received (new HTML ready on the server)", to_event)
        line("save -> event -> GET of the new HTML done (what the page does)", to_html)
        print(f"  ratio: naive re-render of every article alone takes {naive_ms / event_med:.1f}x this whole path")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--articles", type=int, default=30, help="filler articles in the folder (default 30)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp), args.articles)
        naive = bench_render(folder, args.runs)
        bench_pipeline(folder, args.runs, naive)


if __name__ == "__main__":
    main()
