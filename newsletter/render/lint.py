"""Warnings about a rendered issue that are worth fixing before sending (not errors)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..content.issue import Issue
    from .issue import RenderedIssue

GMAIL_CLIP_BYTES = 102 * 1024
GMAIL_STYLE_BYTES = 16 * 1024  # Gmail drops a <style> block beyond this (and the @media rules with it)
_STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S | re.I)
SUBJECT_MAX = 70  # longer subjects are cut off on a phone's inbox line


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.images_without_alt: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href") is not None:
            self.links.append((a["href"] or "").strip())
        elif tag == "img":
            src = (a.get("src") or "").strip()
            self.images.append(src)
            if not (a.get("alt") or "").strip():
                self.images_without_alt.append(src)


def lint(rendered: RenderedIssue) -> list[str]:
    warnings: list[str] = []
    size = len(rendered.html.encode())
    if size > GMAIL_CLIP_BYTES:
        warnings.append(
            f"HTML is {size / 1024:.0f} KB: Gmail clips messages over 102 KB (and hides the unsubscribe "
            f"link); shorten the article or link to the web version"
        )
    style = sum(len(block.encode()) for block in _STYLE.findall(rendered.html))
    if style > GMAIL_STYLE_BYTES:
        warnings.append(
            f"the <style> block left after inlining is {style / 1024:.0f} KB: Gmail ignores it over 16 KB (the phone "
            f"and dark-mode rules with it); trim the @media rules in style.css"
        )
    collector = _Collector()
    collector.feed(rendered.html)
    for src in collector.images_without_alt:
        warnings.append(f"image without alt text: {src or '(no src)'}; add ![description](...)")
    images = set(collector.images)
    for url in [*collector.links, *collector.images]:
        if not url or url.startswith(("#", "mailto:", "https://")) or rendered.marker.fullmatch(url):
            continue
        if url.startswith("http://"):
            warnings.append(f"insecure http: link: {url}; use https://")
        elif url in images:
            warnings.append(
                f"relative image: {url}; an email cannot load it: keep the file under the issues folder and set "
                f"[newsletter] base_url (`newsletter serve` hosts it), or use a full https:// URL"
            )
        else:
            warnings.append(f"relative link: {url}; it cannot work in an email, use a full https:// URL")
    if not rendered.preheader:
        warnings.append("no summary: add 'summary:' to the front matter (it is also the inbox preheader)")
    if len(rendered.subject) > SUBJECT_MAX:
        warnings.append(
            f"subject is {len(rendered.subject)} characters: inboxes show about {SUBJECT_MAX}; shorten it "
            f"or set 'subject:'"
        )
    return list(dict.fromkeys(warnings))


def list_send_errors(issue: Issue, base_url: str) -> list[str]:
    """Problems that make an issue unfit for the list: a list send refuses it; the preview shows it.

    A digest shows titles and summaries: without base_url its entries link to nothing (except posts
    pulled from a blog, which link to the blog), and the reader has no way to the rest of the article.
    """
    if issue.kind == "digest" and not base_url and any(not a.canonical_url for a in issue.articles):
        return [
            "digest entries have nothing to link to; set base_url ([newsletter] base_url: where `newsletter serve` "
            "publishes the articles); until then the digest cannot go to the list"
        ]
    return []
