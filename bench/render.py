"""Render time per issue (Markdown + Jinja2 + premailer, once) against the per-subscriber step.

    python bench/render.py [--runs 15]

Prints, for each example article, the median and p90 of `render_issue` and of
`MessageFactory.build` for one subscriber, and their ratio: how many subscribers' messages cost
as much as one render. No timing is asserted anywhere; this is for the README and issue notes.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from newsletter.config import load_config
from newsletter.content.articles import load_articles
from newsletter.content.issue import issue_for
from newsletter.content.subscribers import Subscriber
from newsletter.render.issue import render_issue
from newsletter.render.mime import MessageFactory

ROOT = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    fn()  # warm-up: imports, template compilation, cssutils caches
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    config = load_config(ROOT / "newsletter.toml", env={})
    articles = sorted(load_articles(config.path("issues")), key=lambda a: a.words, reverse=True)
    subscriber = Subscriber(
        email="ada@example.com", name="Ada Lovelace", fields={"email": "ada@example.com", "name": "Ada Lovelace"}
    )
    print(f"{'article':40} {'words':>6} {'render ms (median/p90)':>24} {'build µs':>9} {'ratio':>7}")
    for article in articles:
        issue = issue_for(article)
        renders = timed(lambda issue=issue: render_issue(issue, config), args.runs)
        rendered = render_issue(issue, config)
        factory = MessageFactory(rendered, config, message_key="bench")
        builds = timed(lambda factory=factory: factory.build(subscriber), args.runs * 20)
        r_med = statistics.median(renders)
        r_p90 = statistics.quantiles(renders, n=10)[-1]
        b_med = statistics.median(builds)
        print(
            f"{article.slug:40} {article.words:6d} {r_med * 1e3:11.1f} / {r_p90 * 1e3:8.1f} "
            f"{b_med * 1e6:9.1f} {r_med / b_med:7.0f}x"
        )


if __name__ == "__main__":
    main()
