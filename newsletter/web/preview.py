"""The local preview server (`newsletter preview`): Starlette routes around the render and send-test code.

Pages are rendered server-side (Jinja2, autoescaped); `preview.js` listens to /events and swaps in
the fresh page when a watched file changes. The "Send test" form calls `send.testsend.send_test`, the
same function as the CLI, behind a Host allowlist, a same-origin check and a CSRF token.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..config import Config
from ..content.articles import resolve_article
from ..content.issue import Issue, issue_for
from ..digest.plan import next_digest
from ..errors import DeliveryError, NewsletterError
from ..render.lint import GMAIL_CLIP_BYTES
from ..send.testsend import send_test
from .preview_render import Preview, Previewer
from .preview_watch import Hub, watch

TEMPLATES = Path(__file__).with_name("preview_templates")
DIGEST_KEY = "_digest"
# Pages may load the email's https images and inline styles; no script but our own file.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: http: data:; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# The raw email route: shown in a sandbox, never able to run script.
EMAIL_CSP = "sandbox allow-popups allow-popups-to-escape-sandbox; script-src 'none'; frame-ancestors 'self'"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def _pages() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["kb"] = _kb
    return env


class PreviewApp:
    """Routes and per-server state: the previewer, the event hub and the CSRF secret."""

    def __init__(self, previewer: Previewer, on_ready: Callable[[], Any] | None = None) -> None:
        self.previewer = previewer
        self.hub = Hub()
        self.secret = secrets.token_bytes(32)
        self.pages = _pages()
        self.on_ready = on_ready
        self.stop = anyio.Event()

    # -- helpers ----------------------------------------------------------------------------
    def csrf_token(self) -> str:
        return hmac.new(self.secret, b"send-test", hashlib.sha256).hexdigest()

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.pages.get_template(name).render(
            csrf=self.csrf_token(), clip_bytes=GMAIL_CLIP_BYTES, digest_key=DIGEST_KEY, **context
        )
        return HTMLResponse(html, status, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"})

    async def preview(self, key: str) -> Preview | None:
        if key == DIGEST_KEY:
            return await run_in_threadpool(self.previewer.digest)
        return await run_in_threadpool(self.previewer.article, key)

    def issue(self, key: str) -> Issue:
        """A fresh Issue for a send: the article file as it is now, or the next digest."""
        config = self.previewer.config
        if key == DIGEST_KEY:
            issue: Issue | None = next_digest(config, dt.datetime.now(config.schedule.timezone))
            if issue is None:
                raise NewsletterError("no digest to send: no articles in the digest window")
            return issue
        path = self.previewer.article_path(key)
        if path is None:
            raise NewsletterError(f"no article {key!r} in {config.path('issues')}/")
        return issue_for(resolve_article(str(path), config.path("issues")))

    # -- routes -----------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        entries, error = await run_in_threadpool(self.previewer.index)
        digest = await run_in_threadpool(self.previewer.digest)
        return self.page("index.html", entries=entries, error=error, digest=digest)

    async def email_page(self, request: Request) -> Response:
        key = request.path_params["key"]
        preview = await self.preview(key)
        if preview is None:
            return self.page("missing.html", 404, key=key)
        return self.page("email.html", preview=preview, key=key)

    async def email_raw(self, request: Request) -> Response:
        """The HTML exactly as `render` writes it (and the sample subscriber receives it)."""
        preview = await self.preview(request.path_params["key"])
        if preview is None or preview.error:
            return Response(preview.error if preview else "not found", 404 if preview is None else 500)
        return Response(
            preview.html.encode(),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": EMAIL_CSP, "Cache-Control": "no-store"},
        )

    async def text_raw(self, request: Request) -> Response:
        preview = await self.preview(request.path_params["key"])
        if preview is None or preview.error:
            return Response(preview.error if preview else "not found", 404 if preview is None else 500)
        return Response(preview.text.encode(), media_type="text/plain; charset=utf-8")

    async def eml_raw(self, request: Request) -> Response:
        key = request.path_params["key"]
        preview = await self.preview(key)
        if preview is None or preview.error:
            return Response(preview.error if preview else "not found", 404 if preview is None else 500)
        disposition = f'attachment; filename="{preview.key}.eml"'
        return Response(preview.eml, media_type="message/rfc822", headers={"Content-Disposition": disposition})

    def _same_origin(self, request: Request) -> bool:
        """The form was posted by a page of this server: Origin (or Referer) names the Host we serve."""
        expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
        origin = request.headers.get("origin")
        if origin is not None:
            return origin == expected
        referer = request.headers.get("referer", "")
        return referer == expected or referer.startswith(expected + "/")

    async def send_test_route(self, request: Request) -> Response:
        key = request.path_params["key"]
        wants_json = "application/json" in request.headers.get("accept", "")

        def answer(ok: bool, message: str, status: int) -> Response:
            if wants_json:
                return JSONResponse({"ok": ok, "message": message}, status)
            return self.page("sent.html", status, ok=ok, message=message, key=key)

        if not self._same_origin(request):
            return answer(False, "refused: the request did not come from this preview page (Origin/Referer)", 403)
        form = await request.form()
        token = str(form.get("csrf", ""))
        if not hmac.compare_digest(token.encode(), self.csrf_token().encode()):
            return answer(False, "refused: missing or wrong form token; reload the preview page and try again", 403)
        address = str(form.get("to", "")).strip()
        try:
            issue = await run_in_threadpool(self.issue, key)
            results = await send_test(self.previewer.config, issue, [address])
        except DeliveryError as exc:
            return answer(False, str(exc), 502)
        except NewsletterError as exc:
            return answer(False, str(exc), 400)
        done = "; ".join(f"sent test to {r.recipient}: {r.detail}" for r in results)
        return answer(True, done, 200)

    async def events(self, request: Request) -> Response:
        """Server-sent events: one `data:` line per batch of file changes, after the re-render."""
        queue = self.hub.subscribe(request.query_params.get("slug", ""))

        async def stream() -> AsyncIterator[str]:
            try:
                yield f"retry: 500\nevent: hello\ndata: {self.hub.version}\n\n"
                while True:
                    try:
                        message = await asyncio.wait_for(queue.get(), 15)
                    except TimeoutError:
                        yield ": ping\n\n"
                        continue
                    if message is None:
                        return
                    yield f"data: {message}\n\n"
            finally:
                self.hub.unsubscribe(queue)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in {"preview.js", "preview.css"}:
            return Response("not found", 404)
        return FileResponse(TEMPLATES / name, headers={"Cache-Control": "no-store"})

    # -- app --------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch, self.previewer, self.hub, self.stop)
            if self.on_ready is not None:
                self.on_ready()
            try:
                yield
            finally:
                self.stop.set()
                self.hub.close()

    def routes(self) -> list[Route]:
        key = "/issue/{key:str}"
        return [
            Route("/", self.index),
            Route(key, self.email_page),
            Route(f"{key}/email.html", self.email_raw),
            Route(f"{key}/email.txt", self.text_raw),
            Route(f"{key}/message.eml", self.eml_raw),
            Route(f"{key}/send-test", self.send_test_route, methods=["POST"]),
            Route("/events", self.events),
            Route("/assets/{name:str}", self.asset),
        ]


def allowed_hosts(host: str, remote: Sequence[str] = ()) -> list[str]:
    """Host headers we answer: loopback names, the bound address and the names given for remote use.

    Never any name: a page elsewhere could point its own name at this machine (DNS rebinding) and
    read drafts or send tests through the visitor's browser.
    """
    bound = set() if host in {"0.0.0.0", "::", ""} else {host.lower()}
    return sorted(LOOPBACK | bound | {name.lower() for name in remote})


def create_app(
    config: Config,
    *,
    host: str = "127.0.0.1",
    remote: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    on_ready: Callable[[], Any] | None = None,
) -> Starlette:
    """The preview ASGI app for a config; `remote` are the host names other machines may use (--allow-remote);
    `env` is what config reloads read (default: os.environ)."""
    preview = PreviewApp(Previewer(config, env), on_ready)
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(host, remote))]
    app = Starlette(routes=preview.routes(), middleware=middleware, lifespan=preview.lifespan)
    app.state.preview = preview
    return app
