"""Relative images and files in an article's HTML -> asset URLs, images sized from the file itself.

Email clients cannot load `images/chain.png`; the email gets `<base_url>/assets/images/chain.<hash>.png`
instead, with `width` (capped at the content column) and `height` read from the image's header, so
Outlook, which ignores CSS `max-width`, does not blow it up. Web pages get the same names relative to
the page, so a static export works under any path.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import imagesize

from ..config import Config
from .assets import Asset, AssetStore

# The email's column: a 600 px container less 2 x 32 px padding (templates/style.css).
CONTENT_WIDTH = 536
_URL_ATTRIBUTE = {"img": "src", "a": "href"}
# A src/href that is neither absolute (scheme:, //) nor a fragment: possibly an asset.
_RELATIVE = re.compile(r"""(?:src|href)\s*=\s*["']?(?![a-zA-Z][a-zA-Z0-9+.-]*:|//|#|["'>])""")


class _StartTags(HTMLParser):
    """Where each <img> and <a> start tag is in the HTML, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[tuple[int, int], str, str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _URL_ATTRIBUTE:
            self.found.append((self.getpos(), self.get_starttag_text() or "", tag, attrs))

    handle_startendtag = handle_starttag


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) in pixels from the file's header, or None when it does not say."""
    try:
        width, height = imagesize.get(str(path))
    except (OSError, ValueError):
        return None
    if not isinstance(width, int | float) or not isinstance(height, int | float) or width <= 0 or height <= 0:
        return None
    return round(width), round(height)


def _number(value: str | None) -> int | None:
    try:
        return int(value) if value is not None and value.strip().isdigit() else None
    except ValueError:
        return None


def sized(attrs: dict[str, str | None], size: tuple[int, int] | None, max_width: int | None) -> None:
    """Set `width` and `height` (when known): the author's width wins, capped at `max_width`, proportions kept."""
    width, height = _number(attrs.get("width")), _number(attrs.get("height"))
    if width is None and size is not None:
        width = size[0]
    if width is None:
        return
    if max_width is not None and width > max_width:
        width, height = max_width, None
    if height is None and size is not None:
        height = round(size[1] * width / size[0])
    attrs["width"] = str(width)
    if height is not None:
        attrs["height"] = str(height)


@dataclass(frozen=True)
class AssetLinks:
    """Rewrites an article's relative asset references to `prefix + hashed name`."""

    store: AssetStore
    prefix: str  # "https://news.example.org/assets/" or "../../assets/"
    max_width: int | None = CONTENT_WIDTH

    @classmethod
    def for_email(cls, config: Config) -> AssetLinks:
        return cls(AssetStore(config.path("issues")), f"{config.newsletter.base_url.rstrip('/')}/assets/")

    def rewrite(self, body: str, base_dir: Path, used: list[Asset] | None = None) -> str:
        """`body` with every relative reference to an asset replaced; found assets are appended to `used`."""
        if not _RELATIVE.search(body):  # most bodies link only to https:// and #footnotes
            return body
        parser = _StartTags()
        parser.feed(body)
        parser.close()
        if not parser.found:
            return body
        # HTMLParser counts lines at "\n" only.
        line_starts = [0] + [i + 1 for i, char in enumerate(body) if char == "\n"]
        out: list[str] = []
        done = 0
        for (line, column), text, tag, attr_list in parser.found:
            attrs = dict(attr_list)
            asset = self.store.referenced(attrs.get(_URL_ATTRIBUTE[tag]) or "", base_dir)
            start = line_starts[line - 1] + column
            if asset is None or not text or body[start : start + len(text)] != text:
                continue
            if used is not None:
                used.append(asset)
            attrs[_URL_ATTRIBUTE[tag]] = self.prefix + asset.url_path
            if tag == "img" and asset.is_image:
                sized(attrs, image_size(asset.path), self.max_width)
            out += [body[done:start], _start_tag(tag, attrs, text.endswith("/>"))]
            done = start + len(text)
        out.append(body[done:])
        return "".join(out)


def _start_tag(tag: str, attrs: dict[str, str | None], self_closing: bool) -> str:
    parts = [tag] + [
        name if value is None else f'{name}="{html.escape(value, quote=True)}"' for name, value in attrs.items()
    ]
    return f"<{' '.join(parts)}{' /' if self_closing else ''}>"
