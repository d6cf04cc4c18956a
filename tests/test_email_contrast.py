"""Every text of the default theme readable in light and dark mode, on a phone and a desktop.

Headless Chromium lays out each example article's HTML and a digest with `prefers-color-scheme`
light and dark at 375 and 800 px; for every visible text the page computes the WCAG contrast of
its colour against the background it is painted on (4.5:1, 3:1 for large text), and the page
must not scroll sideways.
"""

from __future__ import annotations

import email
import email.policy
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from .helpers import Cli
from .smtpd import PRODUCTION

pytestmark = pytest.mark.browser

ARTICLES = ["2026-11-09-tls-certificates", "2026-11-16-password-managers", "2026-11-23-welcome"]

# Each visible text node: its element, colour over the backgrounds it sits on, and whether it is large.
CONTRAST = """() => {
  const rgba = (text) => {
    const p = text.match(/[\\d.]+/g).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, below) => ({
    r: top.r * top.a + below.r * (1 - top.a), g: top.g * top.a + below.g * (1 - top.a),
    b: top.b * top.a + below.b * (1 - top.a), a: 1,
  });
  const background = (element) => {
    const layers = [];
    for (let e = element; e; e = e.parentElement) {
      const colour = rgba(getComputedStyle(e).backgroundColor);
      if (colour.a > 0) { layers.push(colour); if (colour.a >= 1) break; }
    }
    let result = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) result = over(layer, result);
    return result;
  };
  const luminance = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const element = node.parentElement;
    if (!node.textContent.trim() || !element.getClientRects().length) continue;
    const style = getComputedStyle(element);
    if (style.visibility === 'hidden') continue;
    const bg = background(element);
    const fg = over(rgba(style.color), bg);
    const [light, dark] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    const size = parseFloat(style.fontSize);
    found.push({
      text: node.textContent.trim().slice(0, 40), element: element.tagName.toLowerCase() + (element.className ? '.' + element.className : ''),
      ratio: (light + 0.05) / (dark + 0.05), large: size >= 24 || (parseInt(style.fontWeight) >= 700 && size >= 18.66),
      colour: style.color,
    });
  }
  return { texts: found, scroll: document.documentElement.scrollWidth, width: window.innerWidth };
}"""


def _pages(cli: Cli, folder: Path) -> list[Path]:
    """The three articles as sent (with the View online link and the button) and a digest with full text."""
    cli.env.update(PRODUCTION)
    pages = []
    for slug in ARTICLES:
        assert cli("render", slug, "--out", "out").exit_code == 0
        pages.append(folder / "out" / f"{slug}.html")
    cli.env.update(
        {
            "NEWSLETTER_SCHEDULE_LOOKBACK": "30d",
            "NEWSLETTER_SCHEDULE_CONTENT": "full",
            "NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin",
        }
    )
    # In a process of its own: the browser's event loop runs in this one.
    sent = cli.subprocess("send", "--digest", "--yes", "--now", "2026-11-24T10:00")
    assert sent.returncode == 0, sent.stderr
    (eml, *_rest) = sorted((folder / "outbox").glob("digest-*/*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    digest = folder / "out" / "digest.html"
    digest.write_text(message.get_body(("html",)).get_content(), encoding="utf-8")  # type: ignore[union-attr]
    shutil.rmtree(folder / "outbox")
    return [*pages, digest]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_text_is_readable_and_nothing_scrolls_sideways(
    cli: Cli, folder: Path, browser: Browser, scheme: str
) -> None:
    pages = _pages(cli, folder)
    problems = []
    checked = 0
    for width in (375, 800):
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)  # type: ignore[arg-type]
        page = context.new_page()
        for path in pages:
            page.goto(path.as_uri())
            found = page.evaluate(CONTRAST)
            assert found["scroll"] <= found["width"], f"{path.name} at {width} px scrolls sideways"
            for text in found["texts"]:
                checked += 1
                need = 3.0 if text["large"] else 4.5
                if text["ratio"] < need:
                    problems.append(
                        f"{path.name} {width}px: {text['element']} {text['text']!r}: {text['ratio']:.2f}:1 "
                        f"({text['colour']}) < {need}:1"
                    )
        context.close()
    assert checked > 200  # every paragraph, link, heading, table cell, footnote, button and footer line
    assert not problems, "\n".join(problems)
