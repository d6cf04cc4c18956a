"""Issue -> RenderedIssue: Markdown, Jinja2 and premailer, once per issue.

The result still holds per-subscriber markers (see personal.py); `personalize()` fills them.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markdown
from babel import Locale
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from markupsafe import Markup, escape
from premailer import Premailer

from ..config import Config
from ..content.articles import Article
from ..content.issue import Issue
from ..content.subscribers import list_columns
from ..errors import ContentError, TemplateProblem
from .i18n import install, locale_for
from .images import AssetLinks
from .lint import lint, list_send_errors
from .personal import TABLE_KEY, Field, FieldTable, SubscriberProxy, default_filter, field_values, fill_text
from .plaintext import LazyText, Links
from .postprocess import after_inlining, article_body
from .theme import builtin_templates

MARKDOWN_EXTENSIONS = ["extra", "smarty", "sane_lists"]
# cssutils warns about every vendor property; silenced once here, not per call.
logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
_DOCTYPE = "<!DOCTYPE html>"


@dataclass(frozen=True)
class RenderedIssue:
    """An issue rendered once: final HTML and text with per-subscriber markers."""

    issue: Issue
    subject: str
    preheader: str
    html: str
    text: str
    fields: list[Field]
    marker: re.Pattern[str]  # this render's per-subscriber markers (see personal.py)
    warnings: list[str] = field(default_factory=list)

    def personalize(self, subscriber: Mapping[str, str], unsubscribe_url: str) -> tuple[str, str]:
        """(html, text) exactly as this subscriber receives them."""
        values = field_values(self.fields, subscriber, unsubscribe_url)
        return fill_text(self.html, self.marker, values, escape=True), fill_text(
            self.text, self.marker, values, escape=False
        )


_converters = threading.local()


def markdown_to_html(body: str, source: object = "the article") -> str:
    """Markdown -> HTML with one converter per thread, reset between documents.

    Building a converter (loading the extensions) costs about a tenth of converting an article;
    `newsletter site build` converts hundreds. `source` names the file in an error.
    """
    converter: markdown.Markdown | None = getattr(_converters, "markdown", None)
    if converter is None:
        converter = _converters.markdown = markdown.Markdown(extensions=MARKDOWN_EXTENSIONS, output_format="html")
    try:
        return converter.reset().convert(body)
    except RecursionError:  # what the line checks at load cannot see (nested HTML blocks)
        _converters.markdown = None
        raise ContentError(f"{source}: the Markdown is nested too deeply to render; flatten it") from None
    except Exception:
        _converters.markdown = None  # never reuse a converter left half-way
        raise


def environment(config: Config) -> Environment:
    """The Jinja2 environment: the folder's templates first, then the built-in theme.

    One per templates folder and language, kept: compiled templates are reused across renders (the
    preview renders on every save), and Jinja's auto_reload recompiles a template whose file changed.
    """
    return _environment(str(config.path("templates").resolve()), locale_for(config))


@functools.cache
def _environment(templates: str, locale: Locale) -> Environment:
    loaders = [FileSystemLoader(templates), FileSystemLoader(str(builtin_templates()))]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    install(env, locale)  # _(), ngettext(), the language's `date` and `number` filters
    env.filters["default"] = env.filters["d"] = default_filter
    return env


def _location(exc: BaseException) -> str:
    """'templates/email.html:12' from a template error's traceback (Jinja maps frames to templates)."""
    if isinstance(exc, TemplateSyntaxError):
        return f"{_shown(exc.filename or exc.name or 'template')}:{exc.lineno}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith((".html", ".txt", ".css", ".htm")):
            return f"{_shown(frame.filename)}:{frame.lineno}"
    return "template"


def _shown(filename: str) -> str:
    """A template's path as the user would type it: relative to the working folder when inside it."""
    path = Path(filename)
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return filename


def _render(env: Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except TemplateNotFound as exc:
        raise TemplateProblem(
            f"{_location(exc)}: template {exc.name!r} not found in the templates folder nor the built-in "
            f"theme; create it, or remove the include/extends that names it"
        ) from None
    except (TemplateError, AttributeError, TypeError, ValueError) as exc:
        message = exc.message if isinstance(exc, TemplateError) else str(exc)
        raise TemplateProblem(f"{_location(exc)}: {message}; fix the template") from None


def inline_css(html: str) -> str:
    """premailer: inline the stylesheet, keep @media rules (with !important) in a <style> block."""
    inlined = Premailer(
        html,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        allow_network=False,
        disable_validation=True,
        # Not `height="auto"` from the stylesheet's `height: auto` over an image's real height attribute.
        disable_basic_attributes=["height"],
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    assert isinstance(inlined, str)
    if not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = f"{_DOCTYPE}\n{inlined}"
    return after_inlining(inlined)  # premailer's bgcolor on <pre>, width on <body>...


def _entry(
    article: Article, links: Links, base_url: str, assets: AssetLinks | None, top_heading: int
) -> dict[str, Any]:
    body_html = markdown_to_html(article.body, article.path)
    if article.excerpt:
        excerpt_html = markdown_to_html(article.excerpt, article.path)
    else:
        excerpt_html = f"<p>{escape(article.summary)}</p>" if article.summary else ""
    if assets is not None:  # relative images and files -> absolute <base_url>/assets/ URLs, sized
        body_html = assets.rewrite(body_html, article.path.parent)
        excerpt_html = assets.rewrite(excerpt_html, article.path.parent)
    return {
        "article": article,
        # Headings below the email's own, `th scope`, every image with a width (the text keeps its levels).
        "html": Markup(article_body(body_html, top_heading)),
        "text": LazyText(body_html, links),  # its links are numbered where the text part shows it
        # The `excerpt` or the text before <!-- more -->, else the summary.
        "excerpt_html": Markup(article_body(excerpt_html, top_heading)),
        "excerpt_text": LazyText(excerpt_html, links),
        "summary_text": article.summary,
        # A post pulled from a blog links to the blog, where it lives; any other article to its web version.
        "url": article.canonical_url or (f"{base_url.rstrip('/')}/archive/{article.slug}" if base_url else ""),
    }


def render_issue(
    issue: Issue, config: Config, columns: Iterable[str] | None = None, subject_prefix: str = ""
) -> RenderedIssue:
    """Render once: the expensive part of a send (Markdown, Jinja2, premailer).

    `columns` are the subscriber fields templates may use as subscriber.<column>; by default the
    CSV's columns and the custom fields of the subscribers in the database.
    """
    if columns is None:
        columns = list_columns(config)
    table = FieldTable()
    env = environment(config)
    links = Links()
    base_url = config.newsletter.base_url.rstrip("/")
    assets = AssetLinks.for_email(config) if base_url else None
    # An article's headings go below the email's title (h1), a digest's below each entry's title (h2).
    top_heading = 2 if issue.kind == "article" else 3
    entries = [_entry(a, links, base_url, assets, top_heading) for a in issue.articles]
    context: dict[str, Any] = {
        "newsletter": config.newsletter,
        "issue": issue,
        "entries": entries,
        "article": issue.articles[0] if issue.kind == "article" else None,
        "body_html": entries[0]["html"] if issue.kind == "article" else Markup(""),
        "body_text": entries[0]["text"] if issue.kind == "article" else "",
        "subject": subject_prefix + issue.subject,
        "preheader": issue.summary,
        "subscriber": SubscriberProxy(table, columns),
        TABLE_KEY: table,
        "unsubscribe_url": table.placeholder(Field("unsubscribe_url")),
        "view_online_url": f"{base_url}/archive/{issue.key}" if base_url else "",
        "now": dt.datetime.now(),
        **issue.extra,
    }
    name = "digest" if issue.kind == "digest" else "email"
    html = inline_css(_render(env, f"{name}.html", context))
    text = _render(env, f"{name}.txt", {**context, "links": links})
    for template, output in ((f"{name}.html", html), (f"{name}.txt", text)):
        if table.altered_marker(output):
            raise TemplateProblem(
                f"{template} (or a template it includes): a per-subscriber value (subscriber.<column> or "
                f"unsubscribe_url) went through a filter other than `default`; it is filled in per subscriber "
                f"after rendering: insert it as is, or with `| default(...)`"
            )
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    rendered = RenderedIssue(
        issue=issue,
        subject=subject_prefix + issue.subject,
        preheader=issue.summary,
        html=html,
        text=text,
        fields=table.fields,
        marker=table.marker,
    )
    rendered.warnings.extend(lint(rendered))
    rendered.warnings.extend(list_send_errors(issue, config.newsletter.base_url))
    return rendered


def template_files(config: Config) -> list[Path]:
    """Every template file the renderer may read (watched by the preview server)."""
    folder = config.path("templates")
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
