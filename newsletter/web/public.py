"""`newsletter serve`: the public site (landing page, archive, feed, assets) and one-click unsubscribe.

Fit to run in production behind a reverse proxy: no cookies, no sessions, no JavaScript; every state
change is a POST with a signed token; a GET never changes anything (link scanners follow GETs).
Unsubscribes land in the state database's suppression list at once, so the next send excludes them;
when the database does not take one within a few seconds (locked by another process, moved away, a
server down), it goes to the unsubscribe journal beside the database, fsynced, before the answer
(state/unsubscribes.py), and is folded in at the next request that finds the database writable.
Logs never name an address. The pages are made by site.py (the ones `newsletter site build` writes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..config import Config
from ..errors import NewsletterError, one_line
from ..render.i18n import locale_for, translations
from ..render.mime import list_id
from ..render.unsubscribe import read_token
from ..state.engine import engine_for
from ..state.statuses import SuppressionReason
from ..state.suppressions import reason_for, unsuppress
from ..state.unsubscribes import fold, journal_path, keep, probe, store, waiting
from .feed import atom_feed
from .headers import ASSET_FOREVER, ASSET_SHORT, COMMON, FEED, PRIVATE_PAGE, SITE_CSP, SITE_PAGE, SVG_CSP, CommonHeaders
from .signup import signup_routes
from .site import SitePages

log = logging.getLogger("newsletter.serve")
STORE_SECONDS = 3.0  # how long an unsubscribe waits for the database before it goes to the journal
PROBE_SECONDS = 2.0  # /healthz: a database that takes no write within this is not healthy
_ERROR_PAGE = {**COMMON, "Cache-Control": "no-store", "Content-Security-Policy": SITE_CSP}


class PublicSite:
    """The pages and the state changes; `app()` wires them into a Starlette application."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.secret = config.secret_key
        self.list_id = list_id(config)
        self.engine: Engine = engine_for(config)
        self.pages = SitePages(config, self.engine, static=False)
        self.gettext = translations(locale_for(config)).gettext
        self._blocked = {
            "bounced": self.gettext("Mail to this address was stopped because the mailbox did not accept it."),
            "complained": self.gettext("Mail to this address was stopped because a message was reported as spam."),
        }

    # --- helpers -------------------------------------------------------------------------------

    def page(
        self, name: str, path: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> Response:
        html = self.pages.render(name, path, **context)
        return HTMLResponse(html, status_code=status, headers=headers or PRIVATE_PAGE)

    def bad_token(self, request: Request) -> Response:
        return self.page(
            "error.html",
            request.url.path.lstrip("/"),
            status=400,
            title=self.gettext("This link is not valid"),
            message=self.gettext(
                "The unsubscribe link is incomplete or was changed. Copy the whole link from the email, or use the "
                "unsubscribe link at the bottom of any issue you received. Nothing was changed."
            ),
        )

    def _email(self, request: Request) -> str | None:
        found = read_token(self.secret, request.path_params["token"])
        return found[1] if found else None

    def error_page(self, request: Request, status: int, title: str, message: str) -> Response:
        """An error in the site's look; never the exception's text (public pages show no internals)."""
        try:
            html = self.pages.render("error.html", request.url.path.lstrip("/"), title=title, message=message)
        except Exception:  # a broken error template must not hide the status
            log.exception("error page")
            html = f"<!DOCTYPE html><title>{status}</title><p>{status}</p>"
        return HTMLResponse(html, status_code=status, headers=_ERROR_PAGE)

    def not_found(self, request: Request) -> Response:
        return self.error_page(
            request,
            404,
            self.gettext("Not found"),
            self.gettext("There is nothing at this address. The archive lists everything that was published."),
        )

    def unavailable(self, request: Request) -> Response:
        return self.error_page(
            request,
            500,
            self.gettext("This page cannot be shown"),
            self.gettext("Something went wrong on our side. Please try again later."),
        )

    async def site_page(self, request: Request, make: Any, *args: Any) -> Response:
        """A page of the public site made in a thread; a broken article or template is logged, not shown."""
        try:
            html = await run_in_threadpool(make, *args)
        except NewsletterError as exc:
            log.error("%s: %s", request.url.path, exc)
            return self.unavailable(request)
        if html is None:
            return self.not_found(request)
        return HTMLResponse(html, headers=SITE_PAGE)

    # --- the public site -----------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return await self.site_page(request, self.pages.home)

    async def archive_index(self, request: Request) -> Response:
        return await self.site_page(request, self.pages.archive, 1)

    async def archive_page(self, request: Request) -> Response:
        page = request.path_params["page"]
        return await self.site_page(request, self.pages.archive, page if page > 1 else 0)

    async def item(self, request: Request) -> Response:
        return await self.site_page(request, self.pages.item, request.path_params["slug"])

    async def feed(self, request: Request) -> Response:
        base = self.config.newsletter.base_url or str(request.base_url)

        def make() -> bytes:
            articles, _files = self.pages.index.articles()
            return atom_feed(self.pages, articles, base)

        try:
            body = await run_in_threadpool(make)
        except NewsletterError as exc:
            log.error("feed: %s", exc)
            return self.unavailable(request)
        return Response(body, headers=FEED)

    async def asset(self, request: Request) -> Response:
        """An image or document under the issues folder; nothing else, nothing outside it."""
        found = self.pages.store.named(request.path_params["path"])
        if found is None:
            return self.not_found(request)
        asset, current = found
        headers = {"Cache-Control": ASSET_FOREVER if current else ASSET_SHORT}
        if asset.relative.suffix.lower() == ".svg":
            headers["Content-Security-Policy"] = SVG_CSP
        return FileResponse(asset.path, media_type=asset.content_type, headers=headers)

    # --- unsubscribe ---------------------------------------------------------------------------

    async def _in_time(self, seconds: float, work: Any, *args: Any) -> None:
        """`work` in a thread, given up after `seconds` (it may still finish: everything it does is idempotent)."""
        await asyncio.wait_for(run_in_threadpool(work, *args), seconds)

    async def _fold_journal(self) -> None:
        """Unsubscribes the journal kept while the database could not take them, now that it can."""
        if not waiting(self.config):
            return
        try:
            folded = await run_in_threadpool(fold, self.config, self.engine)
        except Exception as exc:
            log.warning("unsubscribe journal not folded yet (%s)", one_line(getattr(exc, "orig", None) or exc))
        else:
            log.info("folded %d unsubscribes from the unsubscribe journal into the state database", folded)

    async def healthz(self, request: Request) -> Response:
        """200 only when the database would take a write now (an unsubscribe must be storable)."""
        try:
            await self._in_time(PROBE_SECONDS + 1, probe, self.config, self.engine, PROBE_SECONDS)
        except Exception as exc:  # any database failure means "not healthy"
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            return PlainTextResponse(f"state database not writable: {reason}\n", status_code=503)
        await self._fold_journal()
        return PlainTextResponse("ok\n", headers={**COMMON, "Cache-Control": "no-store"})

    async def unsubscribe_help(self, request: Request) -> Response:
        return self.page(
            "error.html",
            "unsubscribe",
            title=self.gettext("Unsubscribe"),
            message=self.gettext(
                "Use the unsubscribe link at the bottom of any issue you received: it is personal to you. "
                "Or write to %(address)s."
            )
            % {"address": self.config.newsletter.from_address},
        )

    async def confirm(self, request: Request) -> Response:
        """GET: only a page with a button; link scanners and previews must not unsubscribe anyone."""
        email = self._email(request)
        if email is None:
            return self.bad_token(request)
        token = request.path_params["token"]
        await self._fold_journal()
        reason = await run_in_threadpool(reason_for, self.engine, email)
        name = "unsubscribed.html" if reason is not None else "confirm.html"
        return self.page(name, f"unsubscribe/{token}", title=self.gettext("Unsubscribe"), email=email, token=token)

    async def unsubscribe(self, request: Request) -> Response:
        """POST: RFC 8058 one-click (body List-Unsubscribe=One-Click) or the confirm button. Idempotent."""
        email = self._email(request)
        if email is None:
            return self.bad_token(request)
        how = "web page"
        try:
            async with request.form(max_files=0, max_fields=10, max_part_size=4096) as form:
                if form.get("List-Unsubscribe") == "One-Click":
                    how = "one-click"
        except Exception:  # a malformed body must not stop a genuine token from unsubscribing
            how = "unreadable body"
        token = request.path_params["token"]
        found = read_token(self.secret, token)
        detail = f"{how} via {found[0] if found else self.list_id} at {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
        try:
            await self._in_time(STORE_SECONDS + 1, store, self.config, self.engine, email, detail, STORE_SECONDS)
        except Exception as exc:  # the database cannot take it now: the journal keeps it (durable) first
            why = "timed out" if isinstance(exc, TimeoutError) else one_line(getattr(exc, "orig", None) or exc)
            try:
                await run_in_threadpool(keep, self.config, email, detail)
            except OSError as failed:
                log.error("an unsubscribe could not be stored (%s) nor journaled (%s)", why, failed.strerror)
                return self.error_page(
                    request,
                    503,
                    self.gettext("This page cannot be shown"),
                    self.gettext("Something went wrong on our side. Please try again later."),
                )
            log.warning(
                "an unsubscribe went to the unsubscribe journal %s (the state database did not take it: %s); "
                "it is folded in once the database takes writes again",
                journal_path(self.config),
                why,
            )
        else:
            await self._fold_journal()
        return self.page(
            "unsubscribed.html", f"unsubscribe/{token}", title=self.gettext("Unsubscribed"), email=email, token=token
        )

    async def resubscribe(self, request: Request) -> Response:
        """POST from the confirmation page: undoes an unsubscribe, never a bounce or a complaint."""
        email = self._email(request)
        if email is None:
            return self.bad_token(request)
        token = request.path_params["token"]
        path = f"resubscribe/{token}"
        await run_in_threadpool(fold, self.config, self.engine)  # an earlier unsubscribe first, then the undo
        reason = await run_in_threadpool(reason_for, self.engine, email)
        if reason in self._blocked:
            return self.page(
                "resubscribed.html", path, title=self.gettext("Resubscribe"), email=email, blocked=self._blocked[reason]
            )
        await run_in_threadpool(unsuppress, self.engine, email, SuppressionReason.UNSUBSCRIBED)
        return self.page(
            "resubscribed.html", path, title=self.gettext("Resubscribed"), email=email, blocked="", token=token
        )

    # --- errors --------------------------------------------------------------------------------

    async def http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            return self.not_found(request)
        if status == 405:
            return self.error_page(
                request, 405, self.gettext("Not allowed"), self.gettext("This address does not take that request.")
            )
        return self.error_page(request, status, str(status), "")

    async def server_error(self, request: Request, exc: Exception) -> Response:
        # The path holds only a token; a database error's text holds no parameters (hide_parameters).
        log.error("%s: %s", request.url.path, one_line(getattr(exc, "orig", None) or exc), exc_info=exc)
        return self.unavailable(request)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                # The public site: the same pages `newsletter site build` writes as files.
                Route("/", self.home, methods=["GET"]),
                Route("/archive", self.archive_index, methods=["GET"]),
                Route("/archive/page/{page:int}", self.archive_page, methods=["GET"]),
                Route("/archive/{slug}", self.item, methods=["GET"]),
                Route("/feed.xml", self.feed, methods=["GET"]),
                Route("/assets/{path:path}", self.asset, methods=["GET"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                # Unsubscribe (RFC 8058).
                Route("/unsubscribe", self.unsubscribe_help, methods=["GET"]),
                Route("/unsubscribe/{token}", self.confirm, methods=["GET"]),
                Route("/unsubscribe/{token}", self.unsubscribe, methods=["POST"]),
                Route("/resubscribe/{token}", self.resubscribe, methods=["POST"]),
                *signup_routes(self.config, self.engine, self.pages),  # /subscribe and /confirm/{token} (web/signup.py)
            ],
            middleware=[Middleware(CommonHeaders)],
            exception_handlers={HTTPException: self.http_error, Exception: self.server_error},
        )


def create_app(config: Config) -> Starlette:
    """The ASGI application for `newsletter serve` (or any ASGI server)."""
    return PublicSite(config).app()


def serve(config: Config, sock: socket.socket) -> None:
    """Run under uvicorn on a listening socket; X-Forwarded-* trusted only from [serve] forwarded_allow_ips."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            proxy_headers=True,
            forwarded_allow_ips=config.serve.forwarded_allow_ips,
            server_header=False,
            log_level="info",
        )
    )
    server.run(sockets=[sock])
