"""The rendered email really is responsive: its @media rule survives premailer and works in a browser.

`newsletter render` writes the HTML; real headless Chromium lays it out at a phone's and a desktop's
width, and the 600px container must follow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from .helpers import Cli

pytestmark = pytest.mark.browser

TLS = "2026-11-09-tls-certificates"

LAYOUT = """() => {
  const box = (el) => el.getBoundingClientRect();
  const container = document.querySelector('table.container');
  const content = document.querySelector('td.content');
  return {
    container: box(container).width,
    page: document.documentElement.scrollWidth,
    padding: getComputedStyle(content).paddingLeft,
  };
}"""


@pytest.mark.parametrize("slug", [TLS, "2026-11-16-password-managers", "2026-11-23-welcome"])
def test_container_follows_the_viewport(cli: Cli, folder: Path, browser: Browser, slug: str) -> None:
    assert cli("render", slug, "--out", "out").exit_code == 0
    url = (folder / "out" / f"{slug}.html").as_uri()
    sizes = {}
    for width in (375, 800):
        context = browser.new_context(viewport={"width": width, "height": 800})
        page = context.new_page()
        page.goto(url)
        sizes[width] = page.evaluate(LAYOUT)
        context.close()
    desktop, phone = sizes[800], sizes[375]
    assert desktop["container"] == 600
    assert desktop["padding"] == "32px"
    # On a phone the media query makes the container the screen's width, with smaller paddings,
    # and nothing (an image's width attribute, a table of long words) pushes the page wider.
    assert phone["container"] == 375
    assert phone["padding"] == "18px"
    assert phone["page"] == 375
