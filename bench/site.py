"""`newsletter site build` for 500 articles, against baselines measured in the same run.

    python bench/site.py [--articles 500] [--runs 3]

Makes a folder of N articles (the example articles' bodies, one in five with a relative image),
then measures, best of `--runs` each:

  (a) `newsletter site build` as a new process (start-up included), and in-process;
  (b) the floor: Markdown alone for every article body (no template, no sanitizer, no files);
  (c) the email pipeline for every article (Markdown + Jinja2 + premailer: what showing each
      article on the web cost when the archive page was the email);
  (d) `serve`: one archive page and one article page with the index cached (the usual request),
      and the first request after start (every article file read).

No timing is asserted anywhere; the ratios are for the README and issue notes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from newsletter.cli.scaffold import init_folder
from newsletter.config import load_config
from newsletter.content.articles import load_articles
from newsletter.content.issue import issue_for
from newsletter.render.issue import markdown_to_html, render_issue
from newsletter.render.web import _body
from newsletter.state.engine import engine_for
from newsletter.web.export import build_site
from newsletter.web.site import SitePages

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "tests" / "data" / "issues").glob("*.md"))
IMAGE = ROOT / "tests" / "data" / "images" / "chain.png"
ENV = {"NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org"}


def make_folder(root: Path, count: int) -> Path:
    folder = root / "letter"
    init_folder(folder)
    issues = folder / "issues"
    for path in issues.glob("*.md"):
        path.unlink()
    (issues / "images").mkdir()
    shutil.copyfile(IMAGE, issues / "images" / "chain.png")
    bodies = [p.read_text(encoding="utf-8").split("---\n", 2)[2] for p in EXAMPLES]
    start = dt.date(2026, 11, 1)
    for i in range(count):
        day = start - dt.timedelta(days=i)
        image = "\n![A chain](images/chain.png)\n" if i % 5 == 0 else ""
        front = (
            f"---\ntitle: Article number {i}\ndate: {day}\nauthor: Mira\nsummary: Summary of {i}.\ntags: [a, b]\n---\n"
        )
        (issues / f"{day}-article-{i}.md").write_text(front + image + bodies[i % len(bodies)], encoding="utf-8")
    return folder


def best(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp), args.articles)
        config = load_config(folder / "newsletter.toml", env=ENV)
        engine = engine_for(config)
        env = {**os.environ, **ENV}
        command = [sys.executable, "-m", "newsletter", "site", "build"]

        def process() -> None:
            subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)

        def in_process() -> None:
            _body.cache_clear()
            build_site(config, engine, folder / "site")

        articles = load_articles(config.path("issues"))
        a = best(process, args.runs)
        a_in = best(in_process, args.runs)
        b = best(lambda: [markdown_to_html(x.body) for x in articles], args.runs)
        c = best(lambda: [render_issue(issue_for(x), config, columns=()) for x in articles], 1)
        pages = SitePages(config, engine, static=False)
        cold = best(lambda: SitePages(config, engine, static=False).archive(1), 1)
        pages.archive(1)
        slug = articles[len(articles) // 2].slug
        pages.item(slug)
        warm_index = best(lambda: pages.archive(1), args.runs * 5)
        warm_item = best(lambda: pages.item(slug), args.runs * 5)
        files = sum(1 for p in (folder / "site").rglob("*") if p.is_file())
        n = len(articles)
        print(f"{n} articles, {files} files in site/")
        print(f"(a) site build, new process:      {a:6.2f} s   ({a / n * 1e3:.1f} ms per article)")
        print(f"(a) site build, in-process:       {a_in:6.2f} s   ({a_in / n * 1e3:.1f} ms per article)")
        print(f"(b) Markdown alone, every body:   {b:6.2f} s")
        print(f"(c) the email render, every one:  {c:6.2f} s")
        print(f"a/b (in-process over the floor):  {a_in / b:6.2f}")
        print(f"c/a (email renders over a build): {c / a_in:6.2f}")
        print(
            f"(d) serve, first /archive after start: {cold * 1e3:.0f} ms; cached /archive: {warm_index * 1e3:.1f} ms; "
            f"cached article page: {warm_item * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
