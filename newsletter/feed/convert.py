"""A post's HTML -> clean Markdown: sanitized by nh3, links made absolute, converted by markdownify.

The order matters. nh3 (Rust's ammonia) first keeps only the tags an article is made of and drops
scripts, styles, forms, event handlers and any link that is not http(s) or mailto (an embedded
player, which no email can play, becomes a link to what it showed); while it
walks the attributes, every link and image is resolved against the post's own address, so the email
and the web page never hold a link relative to the blog. markdownify then writes Markdown that
Python-Markdown reads back to the same structure: headings, lists, links, images, blockquotes,
code (with its language) and tables. Text that would read as Markdown or HTML (`<`, `*`, `[`, a
leading `#` or `1.`) is escaped, so a post about HTML never turns into HTML.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3
from markdownify import MarkdownConverter

from ..render.images import CONTENT_WIDTH
from .parse import plain

SUMMARY_MAX = 280  # characters of a summary (also the inbox preheader and a digest's excerpt)
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl", "dt", "em",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark",
    "ol", "p", "pre", "q", "s", "samp", "small", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "u", "ul", "var", "iframe", "video", "audio",
}  # fmt: skip
# Removed with what they hold: the text inside a script is not part of the post.
_DROPPED = {
    "script", "style", "template", "textarea", "title", "object", "embed", "noscript", "svg", "math", "select",
    "button", "canvas", "head",
}  # fmt: skip
# Embedded players (a video, a map) cannot play in an email: each becomes a link to what it showed.
_EMBEDS = ("iframe", "video", "audio")
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
    "abbr": {"title"},
    "code": {"class"},
    "pre": {"class"},
    **{tag: {"src", "title"} for tag in _EMBEDS},
}
_SCHEMES = {"http", "https", "mailto"}
_LANGUAGE = re.compile(r"^(?:language|lang)-([A-Za-z0-9_+#.-]{1,40})$")
# What blogs end a cut summary with: "[…]", "...", "Continue reading “Title” →".
_MORE = re.compile(
    r"(?:\s*(?:\[\s*(?:…|\.\.\.)\s*\]|…|\.\.\.|(?:Continue reading|Read more|Weiterlesen)\b.{0,120}))+$", re.I
)
_ENDS_SENTENCE = tuple(".!?…:;\"”’)»")
# Markdown a text node must not turn into: line-start headings, list items and rules (markdownify's own).
_LINE_START = (
    (re.compile(r"(\s|^)(#{1,6}(?:\s|$))"), r"\1\\\2"),
    (re.compile(r"((?:\s|^)[0-9]{1,9})([.)](?:\s|$))"), r"\1\\\2"),
    (re.compile(r"(\s|^)([-+](?:\s|$))"), r"\1\\\2"),
    (re.compile(r"(\s|^)(-{2,})"), r"\1\\\2"),
)
_ESCAPED = str.maketrans({"\\": "\\\\", "`": "\\`", "[": "\\[", "]": "\\]", "{": "\\{", "}": "\\}", "|": "&#124;"})


def _keep(base: str) -> Any:
    """nh3's attribute filter: links resolved against `base` (http(s) and mailto only), code's language."""

    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src"):
            absolute = urljoin(base, value.strip()) if base else value.strip()
            return absolute if urlsplit(absolute).scheme.lower() in _SCHEMES else None
        if attribute == "class":
            languages = [m.group(1) for m in map(_LANGUAGE.match, value.split()) if m]
            return f"language-{languages[0]}" if languages else None
        return value

    return keep


def sanitize(markup: str, base: str) -> str:
    """Only the tags a post is made of; no scripts, styles, frames, forms, handlers or javascript: links."""
    return nh3.clean(
        markup,
        tags=_TAGS,
        clean_content_tags=_DROPPED,
        attributes=_ATTRIBUTES,
        attribute_filter=_keep(base),
        url_schemes=_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )


# markdownify's stub names only convert(); its convert_<tag> methods are there at run time.
_BASE = MarkdownConverter.__dict__


class _Converter(MarkdownConverter):
    """markdownify, with the escaping Python-Markdown needs (it would pass `<b>` in text through as HTML)."""

    def escape(self, text: str, parent_tags: Any) -> str:
        if not text:
            return ""
        text = text.translate(_ESCAPED).replace("*", "\\*").replace("_", "\\_")
        text = text.replace("&", "&amp;").replace("&amp;#124;", "&#124;").replace("<", "&lt;").replace(">", "&gt;")
        for pattern, replacement in _LINE_START:
            text = pattern.sub(replacement, text)
        return text


    def convert_li(self, el: Any, text: str, parent_tags: Any) -> str:
        """A list item whose content is indented four columns: Python-Markdown nests lists at four, not two."""
        text = (text or "").strip()
        if not text:
            return "\n"
        parent = el.parent
        if parent is not None and parent.name == "ol":
            start = str(parent.get("start") or "")
            bullet = f"{(int(start) if start.isdigit() else 1) + len(el.find_previous_siblings('li'))}."
        else:
            bullet = "-"
        bullet = bullet.ljust(3) + " "
        lines = text.split("\n")
        rest = [" " * len(bullet) + line if line.strip() else "" for line in lines[1:]]
        return "\n".join([bullet + lines[0], *rest]) + "\n"

    def convert_pre(self, el: Any, text: str, parent_tags: Any) -> str:
        """A fenced block whose fence is longer than any run of backticks in the code."""
        fenced = str(_BASE["convert_pre"](self, el, text, parent_tags))
        longest = max((len(run) for run in re.findall(r"`+", text or "")), default=0)
        if longest < 3:
            return fenced
        fence = "`" * (longest + 1)
        head, _, body = fenced.strip("\n").partition("\n")
        return f"\n\n{fence}{head[3:]}\n{body[: -3]}{fence}\n\n"

    def convert_img(self, el: Any, text: str, parent_tags: Any) -> str:
        """The image with its size as an attribute list, capped at the email's column (Outlook reads `width`)."""
        width, height = el.get("width") or "", el.get("height") or ""
        if not el.get("src") or (width.isdigit() and height.isdigit() and int(width) <= 2 and int(height) <= 2):
            return ""  # a link the sanitizer dropped, or a tracking pixel
        markdown = str(_BASE["convert_img"](self, el, text, parent_tags))
        size = _size(width, height)
        return f"{markdown}{{: {size} }}" if markdown.startswith("![") and size else markdown

    def convert_figcaption(self, el: Any, text: str, parent_tags: Any) -> str:
        caption = text.strip()
        return f"\n\n*{caption}*\n\n" if caption else ""

    def convert_iframe(self, el: Any, text: str, parent_tags: Any) -> str:
        """An embed as a link to what it showed (its fallback text and the player itself are gone)."""
        src = el.get("src") or ""
        if not src:
            return ""
        label = self.escape(el.get("title") or src, parent_tags)
        return f"\n\n[{label}]({src})\n\n"

    convert_video = convert_audio = convert_iframe

    def _raw(self, tag: str, text: str) -> str:
        """Inline markup Markdown has no syntax for, as the HTML tag itself (Markdown keeps inline HTML)."""
        prefix, core, suffix = text[: len(text) - len(text.lstrip())], text.strip(), text[len(text.rstrip()) :]
        return f"{prefix}<{tag}>{core}</{tag}>{suffix}" if core else text

    def convert_del(self, el: Any, text: str, parent_tags: Any) -> str:
        return self._raw("del", text)

    convert_s = convert_strike = convert_del

    def convert_sub(self, el: Any, text: str, parent_tags: Any) -> str:
        return self._raw("sub", text)

    def convert_sup(self, el: Any, text: str, parent_tags: Any) -> str:
        return self._raw("sup", text)

    def convert_mark(self, el: Any, text: str, parent_tags: Any) -> str:
        return self._raw("mark", text)


def _size(width: str, height: str) -> str:
    """`width="536" height="268"` from an image's attributes: at most CONTENT_WIDTH wide, proportions kept."""
    w = int(width) if width and width.isdigit() and 0 < int(width) < 100_000 else None
    h = int(height) if height and height.isdigit() and 0 < int(height) < 100_000 else None
    if w is None:
        return ""
    if w > CONTENT_WIDTH:
        h = round(h * CONTENT_WIDTH / w) if h else None
        w = CONTENT_WIDTH
    return f'width="{w}"' + (f' height="{h}"' if h else "")


def _language(element: Any) -> str | None:
    for candidate in (element, element.find("code")):
        for name in (candidate.get("class") or []) if candidate is not None else []:
            match = _LANGUAGE.match(name)
            if match:
                return match.group(1)
    return None


_CONVERTER = _Converter(
    heading_style="ATX",
    bullets="-",
    strong_em_symbol="*",
    code_language_callback=_language,
    table_infer_header=True,
    keep_inline_images_in=["td", "th", "a", "figure", "p", "li", "span", "div"],
    escape_underscores=True,
    escape_asterisks=True,
    bs4_options="lxml",  # twice as fast as html.parser here; lxml is already there for premailer
)


def to_markdown(markup: str, base: str) -> str:
    """A post's HTML as Markdown (sanitized first)."""
    text = _CONVERTER.convert(sanitize(markup, base))
    text = re.sub(r"[ \t]+\n", lambda m: "  \n" if m.group(0).startswith("  ") else "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def summary_text(markup: str) -> str:
    """A summary as one line of plain text, at most SUMMARY_MAX characters, cut at a word."""
    text = plain(nh3.clean(markup, tags=set(), clean_content_tags=_DROPPED))  # plain() decodes nh3's entities
    cut = _MORE.sub("", text).strip()
    if cut != text and cut and not cut.endswith(_ENDS_SENTENCE):
        cut += "…"  # the blog cut it mid-sentence
    text = cut
    if len(text) <= SUMMARY_MAX:
        return text
    cut = text[: SUMMARY_MAX - 1].rsplit(" ", 1)[0].rstrip(" ,;:-–—")
    return f"{cut}…"
