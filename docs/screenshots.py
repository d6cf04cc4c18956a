"""Screenshots for the README: an email at desktop and phone widths, the preview page, the public site.

    python docs/screenshots.py [ISSUE]      # default: the TLS example article

Renders ISSUE of this repository exactly as `newsletter render` does (build.build_issue), lays the
HTML out in headless Chromium (Debian's /usr/bin/chromium, which `.ci/run` installs) and writes
docs/email-desktop.png, docs/email-mobile.png and docs/preview.png; then builds the public site as
`newsletter site build` does and writes docs/site-home.png (the landing page) and docs/site-article.png
(ISSUE's web version, at a phone's width). Emoji need a colour emoji font
(Debian: fonts-noto-color-emoji); without it they show as boxes.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.browser

from newsletter.config import load_config
from newsletter.content.articles import resolve_article
from newsletter.content.issue import issue_for
from newsletter.render.build import build_issue
from newsletter.state.engine import engine_for
from newsletter.web.export import build_site
from tests.browser import launch

DOCS = Path(__file__).resolve().parent
REPO = DOCS.parent
# The example article's image lives on example.org, which is offline here: draw a stand-in.
IMAGE = """<svg xmlns="http://www.w3.org/2000/svg" width="536" height="120" font-family="DejaVu Sans" font-size="15">
<rect width="536" height="120" fill="#f6f6f4"/>
<g fill="#fff" stroke="#6b6b6b"><rect x="20" y="40" width="130" height="40" rx="6"/>
<rect x="203" y="40" width="130" height="40" rx="6"/><rect x="386" y="40" width="130" height="40" rx="6"/></g>
<g text-anchor="middle" fill="#1d1d1f"><text x="85" y="65">leaf</text><text x="268" y="65">intermediate</text>
<text x="451" y="65">root</text></g>
<path d="M150 60h53M333 60h53" stroke="#6b6b6b" stroke-width="2"/></svg>"""
SHOTS = {"email-desktop.png": (800, 1100), "email-mobile.png": (375, 1100)}
SITE_SHOTS = {"site-home.png": ("", (1100, 1000)), "site-article.png": ("archive/{slug}/", (390, 1100))}


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def site_shots(browser: object, slug: str, tmp: Path) -> None:
    """The public site as `newsletter site build` writes it, served as a static host would serve it."""
    env = {"NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org", "NEWSLETTER_PATHS_STATE": str(tmp / "site.db")}
    config = load_config(REPO / "newsletter.toml", env=env)
    build_site(config, engine_for(config), tmp / "site")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name, (path, (width, height)) in SITE_SHOTS.items():
            context = browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
            context.route("https://example.org/**", stand_in)
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/{path.format(slug=slug)}")
            page.screenshot(path=str(DOCS / name))
            context.close()
            print(f"wrote {DOCS / name}")
    finally:
        server.shutdown()
        server.server_close()


def render(spec: str, out: Path) -> tuple[Path, str]:
    config = load_config(REPO / "newsletter.toml", env={})
    article = resolve_article(spec, config.path("issues"))
    build_issue(config, issue_for(article), out)
    return out / f"{article.slug}.html", article.slug


def stand_in(route: Route) -> None:
    route.fulfill(status=200, content_type="image/svg+xml", body=IMAGE)


def preview_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.match(r"Preview at (\S+)", line)
    if not match:
        raise SystemExit(f"preview did not start: {line!r}")
    return match.group(1)


def main(spec: str = "2026-11-09-tls-certificates") -> None:
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        html, slug = render(spec, Path(tmp))
        browser = launch(pw)
        for name, (width, height) in SHOTS.items():
            context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
            context.route("https://example.org/**", stand_in)
            page = context.new_page()
            page.goto(html.as_uri())
            page.screenshot(path=str(DOCS / name))
            context.close()
            print(f"wrote {DOCS / name}")
        command = ["newsletter", "--config", str(REPO / "newsletter.toml"), "preview", "--port", "8725"]
        proc = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=tmp,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = preview_url(proc)
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            context.route("https://example.org/**", stand_in)
            page = context.new_page()
            page.goto(f"{url}issue/{slug}")
            page.locator("#live-status.on").wait_for()
            page.get_by_role("button", name="Mobile (375 px)").click()
            page.screenshot(path=str(DOCS / "preview.png"))
            print(f"wrote {DOCS / 'preview.png'}")
            context.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        site_shots(browser, slug, Path(tmp))
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:2])
