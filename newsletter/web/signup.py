"""Signup with double opt-in on `newsletter serve`: GET/POST /subscribe, GET/POST /confirm/<token>.

- POST /subscribe answers with the same page and status whatever the address is (new, pending,
  active, suppressed), and the confirmation mail goes out after the answer (a background task), so
  neither the page nor its timing tells who subscribes. A filled-in honeypot field gets that page
  too, and nothing else happens.
- The form is a plain cross-origin HTML form (no cookie, no CSRF token), so it can sit on the
  author's blog; the state change it causes is only a mail to the address typed in.
- Only POST /confirm/<token> confirms: GET shows a button (link scanners prefetch GETs). A forged
  token gets 400, an expired one 410, both with a page that says what to do.
- Limits held in the state database, so every replica enforces them: per client (IP address, as a
  keyed hash) on POST /subscribe, 429 past it; one confirmation mail per address per interval;
  request bodies capped at 8 KB. Signups are off without [newsletter] base_url and the secret.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.formparsers import FormParser, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..config import Config
from ..content.addresses import normalize_address
from ..content.names import first_name_of
from ..errors import NewsletterError
from ..render.confirm_token import Signup, keyed_hash, read_confirm_token
from ..render.confirmation import expiry_text
from ..render.mime import list_id
from ..send.confirmation import new_signup, send_confirmation
from ..send.transport import AttemptKind
from ..state import ratelimits, signups
from ..state.engine import utcnow
from .headers import PRIVATE_PAGE
from .site import SitePages

MAX_BODY = 8 * 1024
MAX_NAME = 100
HONEYPOT = "website"
_CLEANUP_EVERY = 200  # purge expired pending signups and rate-limit rows on about one POST in this many
log = logging.getLogger("newsletter.serve")


class BodyTooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BodyTooLarge
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > MAX_BODY:
            raise BodyTooLarge
    return bytes(chunks)


async def _form(request: Request, body: bytes) -> FormData:
    """The form fields of a capped body: urlencoded (what an HTML form sends) or multipart."""

    async def once() -> AsyncGenerator[bytes, None]:
        yield body
        yield b""

    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        return await MultiPartParser(request.headers, once(), max_files=0, max_fields=10).parse()
    return await FormParser(request.headers, once(), max_fields=10).parse()


class SignupSite:
    """The signup pages, drawn by the public site's renderer (its layout, language and links)."""

    def __init__(self, config: Config, engine: Engine, pages: SitePages) -> None:
        self.config = config
        self.engine = engine
        self.pages = pages
        self.list_id = list_id(config)
        nl = config.newsletter
        self.open = bool(config.signup.enabled and config.secret_key and nl.base_url)

    def page(
        self,
        template: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        path: str = "subscribe",
        **context: Any,
    ) -> Response:
        """A private page (no-store, noindex); `path` is where it is served, for its relative links."""
        html = self.pages.render(template, path, **context)
        return HTMLResponse(html, status_code=status, headers={**PRIVATE_PAGE, **(headers or {})})

    def closed(self) -> Response:
        return self.page(
            "error.html",
            status=404,
            title="Signups are closed",
            message=f"{self.config.newsletter.name} does not take signups here.",
        )

    def _client(self, request: Request) -> str:
        host = request.client.host if request.client else "unknown"
        return keyed_hash(self.config.secret_key, "client", host)

    # --- the form --------------------------------------------------------------------------------

    async def form(self, request: Request) -> Response:
        if not self.open:
            return self.closed()
        return self.page("signup_form.html", title="Subscribe", email="", name="", error="")

    async def subscribe(self, request: Request) -> Response:
        if not self.open:
            return self.closed()
        try:
            body = await _body(request)
        except BodyTooLarge:
            return self.page("error.html", status=413, title="Too much data", message="The form sent too much data.")
        signup = self.config.signup
        client = self._client(request)
        if signup.rate_limit:
            hits = await run_in_threadpool(ratelimits.hit, self.engine, f"client:{client}", signup.rate_window)
            if hits > signup.rate_limit:
                retry = str(int(signup.rate_window.total_seconds()))
                return self.page(
                    "error.html",
                    status=429,
                    headers={"Retry-After": retry},
                    title="Too many signups",
                    message="Too many signups came from your network. Please try again later.",
                )
        try:
            form = await _form(request, body)
        except Exception:  # a malformed body: the form again
            return self.page("signup_form.html", status=400, title="Subscribe", email="", name="", error="form")
        raw_email = str(form.get("email") or "").strip()
        raw_name = str(form.get("name") or "").strip()
        if str(form.get(HONEYPOT) or ""):
            log.info("signup: honeypot field filled in; ignored")
            return self.check_page(raw_email[:254])
        try:
            email = normalize_address(raw_email, "email")
        except NewsletterError:
            return self.page(
                "signup_form.html", status=400, title="Subscribe", email=raw_email[:254], name=raw_name, error="email"
            )
        name = " ".join(raw_name.split())
        if len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in raw_name):
            return self.page("signup_form.html", status=400, title="Subscribe", email=email, name="", error="name")
        task = await run_in_threadpool(self._register, email, name, client)
        return self.check_page(email, task)

    def check_page(self, email: str, task: BackgroundTask | None = None) -> Response:
        interval = expiry_text(self.config.signup.mail_interval)
        response = self.page("signup_check.html", title="Check your inbox", email=email, interval=interval)
        response.background = task
        return response

    def _register(self, email: str, name: str, client: str) -> BackgroundTask | None:
        """Decide (in a thread: database calls) whether a confirmation goes out; the task that sends it."""
        if random.randrange(_CLEANUP_EVERY) == 0:
            self._cleanup()
        state = signups.signup_state(self.engine, email)
        if state == "active":
            return None  # already receiving it: nothing to confirm (and the page says the same)
        mail_bucket = f"mail:{keyed_hash(self.config.secret_key, 'email', email.lower())}"
        if ratelimits.hit(self.engine, mail_bucket, self.config.signup.mail_interval) > 1:
            return None  # a confirmation went out recently
        first_name = first_name_of(name)
        if state == "new":
            signups.record_pending(self.engine, email, name, first_name, client)
        return BackgroundTask(self._mail, new_signup(self.config, email, name, first_name, client, utcnow()))

    async def _mail(self, signup: Signup) -> None:
        try:
            attempt = await send_confirmation(self.config, signup)
        except NewsletterError as exc:
            log.error("signup: the confirmation mail could not be made or sent: %s", exc)
            return
        if attempt.kind != AttemptKind.SENT:
            log.error("signup: the confirmation mail was not delivered (%s)", attempt.reply)
        else:
            log.info("signup: confirmation mail sent")

    def _cleanup(self) -> None:
        signup = self.config.signup
        signups.purge_pending(self.engine, signup.confirm_expiry)
        ratelimits.purge(self.engine, max(signup.rate_window, signup.mail_interval))

    # --- the confirmation ----------------------------------------------------------------------

    def _token(self, request: Request) -> tuple[Signup | None, Response | None]:
        state, signup = read_confirm_token(
            self.config.secret_key, request.path_params["token"], self.config.signup.confirm_expiry, utcnow()
        )
        if state == "invalid" or signup is None or signup.list_id != self.list_id:
            return None, self.page(
                "error.html",
                path=request.url.path.lstrip("/"),
                status=400,
                title="This link is not valid",
                message="The confirmation link is incomplete or was changed. Copy the whole link from the email, "
                "or sign up again. Nothing was changed.",
            )
        if state == "expired":
            return None, self.page(
                "signup_expired.html", path=request.url.path.lstrip("/"), status=410, title="This link has expired"
            )
        return signup, None

    async def show(self, request: Request) -> Response:
        """GET: a page with the button; confirming takes a POST (link scanners prefetch GETs)."""
        signup, refused = self._token(request)
        if signup is None:
            assert refused is not None
            return refused
        return self.page(
            "signup_confirm.html",
            path=request.url.path.lstrip("/"),
            title="Confirm your subscription",
            email=signup.email,
            token=request.path_params["token"],
        )

    async def confirm(self, request: Request) -> Response:
        signup, refused = self._token(request)
        if signup is None:
            assert refused is not None
            return refused
        await run_in_threadpool(
            signups.confirm,
            self.engine,
            signup.email,
            signup.name,
            signup.first_name,
            signup.requested_at,
            signup.client,
        )
        return self.page(
            "signup_done.html", path=request.url.path.lstrip("/"), title="You are subscribed", email=signup.email
        )


def signup_routes(config: Config, engine: Engine, pages: SitePages) -> list[Route]:
    """The routes `newsletter serve` adds for signups."""
    site = SignupSite(config, engine, pages)
    return [
        Route("/subscribe", site.form, methods=["GET"]),
        Route("/subscribe", site.subscribe, methods=["POST"]),
        Route("/confirm/{token}", site.show, methods=["GET"]),
        Route("/confirm/{token}", site.confirm, methods=["POST"]),
    ]
