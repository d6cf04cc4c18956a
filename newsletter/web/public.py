"""The public endpoints behind `newsletter serve`: one-click unsubscribe (RFC 8058) and the web archive.

Fit to run in production behind a reverse proxy: no cookies, no sessions, no JavaScript; every state
change is a POST with a signed token; a GET never changes anything (link scanners follow GETs).
Unsubscribes land in the state database's suppression list at once, so the next send excludes them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..config import Config
from ..content.articles import article_paths, load_article
from ..content.issue import issue_for
from ..errors import NewsletterError
from ..render.issue import render_issue, template_files
from ..render.mime import list_id
from ..render.unsubscribe import read_token
from ..state.engine import engine_for, ping
from ..state.statuses import SuppressionReason
from ..state.suppressions import reason_for, suppress, unsuppress
from .signup import signup_routes

_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
# Values the web archive fills in where an email has the subscriber's: nothing personal.
NEUTRAL_SUBSCRIBER = {"email": "a reader", "name": ""}
_BLOCKED = {"bounced": "bounced (the mailbox did not accept it)", "complained": "was reported as spam"}
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token in the URL must not leak to other sites
    "X-Frame-Options": "DENY",  # no clickjacking of the unsubscribe button
}
_PAGE_HEADERS = {
    **_COMMON_HEADERS,
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Robots-Tag": "noindex",
}
# The archive shows an email's HTML: inline styles and remote (https) images, nothing active.
_ARCHIVE_HEADERS = {
    **_COMMON_HEADERS,
    "Content-Security-Policy": "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
}
log = logging.getLogger("newsletter.serve")


@dataclass
class _ArchiveCache:
    """Rendered archive pages by slug, reused while the article and the templates are unchanged."""

    pages: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)


class PublicSite:
    """The pages and the state changes; `app()` wires them into a Starlette application."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.secret = config.secret_key
        self.list_id = list_id(config)
        self.engine: Engine = engine_for(config)
        self.env = Environment(
            loader=PackageLoader("newsletter.web", "public_templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.cache = _ArchiveCache()

    # --- helpers -------------------------------------------------------------------------------

    def page(self, name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> Response:
        nl = self.config.newsletter
        html = self.env.get_template(name).render(
            language=nl.language, newsletter_name=nl.name, postal_address=nl.postal_address, **context
        )
        return HTMLResponse(html, status_code=status, headers=headers or _PAGE_HEADERS)

    def bad_token(self) -> Response:
        return self.page(
            "error.html",
            status=400,
            title="This link is not valid",
            message="The unsubscribe link is incomplete or was changed. Copy the whole link from the email, "
            "or use the unsubscribe link at the bottom of any issue you received. Nothing was changed.",
        )

    def _email(self, request: Request) -> str | None:
        found = read_token(self.secret, request.path_params["token"])
        return found[1] if found else None

    # --- endpoints -----------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        try:
            await run_in_threadpool(ping, self.engine)
        except Exception as exc:  # any database failure means "not healthy"
            return PlainTextResponse(f"state database unavailable: {type(exc).__name__}\n", status_code=503)
        return PlainTextResponse("ok\n", headers=_COMMON_HEADERS)

    async def unsubscribe_help(self, request: Request) -> Response:
        return self.page(
            "error.html",
            title="Unsubscribe",
            message="Use the unsubscribe link at the bottom of any issue you received: it is personal to you. "
            f"Or write to {self.config.newsletter.from_address}.",
        )

    async def confirm(self, request: Request) -> Response:
        """GET: only a page with a button; link scanners and previews must not unsubscribe anyone."""
        email = self._email(request)
        if email is None:
            return self.bad_token()
        reason = await run_in_threadpool(reason_for, self.engine, email)
        if reason is not None:
            return self.page("unsubscribed.html", title="Unsubscribed", email=email, token=request.path_params["token"])
        return self.page("confirm.html", title="Unsubscribe", email=email, token=request.path_params["token"])

    async def unsubscribe(self, request: Request) -> Response:
        """POST: RFC 8058 one-click (body List-Unsubscribe=One-Click) or the confirm button. Idempotent."""
        email = self._email(request)
        if email is None:
            return self.bad_token()
        how = "web page"
        try:
            async with request.form(max_files=0, max_fields=10, max_part_size=4096) as form:
                if form.get("List-Unsubscribe") == "One-Click":
                    how = "one-click"
        except Exception:  # a malformed body must not stop a genuine token from unsubscribing
            how = "unreadable body"
        found = read_token(self.secret, request.path_params["token"])
        detail = f"{how} via {found[0] if found else self.list_id} at {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
        await run_in_threadpool(suppress, self.engine, email, SuppressionReason.UNSUBSCRIBED, detail)
        return self.page("unsubscribed.html", title="Unsubscribed", email=email, token=request.path_params["token"])

    async def resubscribe(self, request: Request) -> Response:
        """POST from the confirmation page: undoes an unsubscribe, never a bounce or a complaint."""
        email = self._email(request)
        if email is None:
            return self.bad_token()
        reason = await run_in_threadpool(reason_for, self.engine, email)
        if reason in _BLOCKED:
            return self.page("resubscribed.html", title="Resubscribe", email=email, blocked=_BLOCKED[reason])
        await run_in_threadpool(unsuppress, self.engine, email, SuppressionReason.UNSUBSCRIBED)
        return self.page(
            "resubscribed.html", title="Resubscribed", email=email, blocked="", token=request.path_params["token"]
        )

    async def archive_index(self, request: Request) -> Response:
        articles = await run_in_threadpool(self._published)
        return self.page("archive_index.html", headers=_ARCHIVE_HEADERS, title="Archive", articles=articles)

    async def archive(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        try:
            html = await run_in_threadpool(self.archive_html, slug)
        except NewsletterError as exc:  # a broken article or template: the details go to the log only
            log.error("archive %s: %s", slug, exc)
            return self.page(
                "error.html", status=500, title="This issue cannot be shown", message="Please try again later."
            )
        if html is None:
            return self.page(
                "error.html",
                status=404,
                headers=_ARCHIVE_HEADERS,
                title="Not found",
                message="There is no published issue at this address.",
            )
        return HTMLResponse(html, headers=_ARCHIVE_HEADERS)

    # --- archive -------------------------------------------------------------------------------

    def _published(self) -> list[Any]:
        articles = []
        for path in article_paths(self.config.path("issues")):
            try:
                article = load_article(path)
            except NewsletterError:
                continue
            if article.is_published(dt.datetime.now()):  # not drafts, not dated in the future
                articles.append(article)
        return sorted(articles, key=lambda a: (a.date, a.slug), reverse=True)

    def archive_html(self, slug: str) -> str | None:
        """The web version of a published article, as an email would show it minus anything personal."""
        if not _SLUG.match(slug):
            return None
        path = self.config.path("issues") / f"{slug}.md"
        if not path.is_file():
            return None
        stamp = tuple(p.stat().st_mtime_ns for p in [path, *template_files(self.config)])
        cached = self.cache.pages.get(slug)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        article = load_article(path)
        if not article.is_published(dt.datetime.now()):
            return None
        rendered = render_issue(issue_for(article), self.config)
        base = self.config.newsletter.base_url.rstrip("/")
        html, _text = rendered.personalize(NEUTRAL_SUBSCRIBER, f"{base}/unsubscribe")
        self.cache.pages[slug] = (stamp, html)
        return html

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/unsubscribe", self.unsubscribe_help, methods=["GET"]),
                Route("/unsubscribe/{token}", self.confirm, methods=["GET"]),
                Route("/unsubscribe/{token}", self.unsubscribe, methods=["POST"]),
                Route("/resubscribe/{token}", self.resubscribe, methods=["POST"]),
                Route("/archive", self.archive_index, methods=["GET"]),
                Route("/archive/{slug}", self.archive, methods=["GET"]),
                *signup_routes(self.config, self.engine),
            ]
        )


def create_app(config: Config) -> Starlette:
    """The ASGI application for `newsletter serve` (or any ASGI server)."""
    return PublicSite(config).app()


def serve(config: Config, host: str, port: int) -> None:
    """Run under uvicorn; trusts X-Forwarded-* only from [serve] forwarded_allow_ips (the proxy)."""
    import uvicorn

    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=config.serve.forwarded_allow_ips,
        server_header=False,
        log_level="info",
    )
