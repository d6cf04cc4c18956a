"""The security headers of the public server: a few on every response, a strict policy per kind of page.

No page runs JavaScript, embeds a frame or loads anything from another site except https images in
an article, so the Content-Security-Policy allows nothing else. A middleware adds the common headers
to every response, including the ones Starlette makes itself (redirects, 404s, 500s).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # unsubscribe tokens in URLs must not leak; readers are not tracked
    "X-Frame-Options": "DENY",  # no clickjacking of a button
}
# Unsubscribe pages: personal, never cached, never indexed.
PRIVATE_PAGE = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Robots-Tag": "noindex",
}
# The public site (landing page, archive, articles): same-origin assets and https images from articles.
SITE_CSP = (
    "default-src 'none'; img-src 'self' https: data:; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SITE_PAGE = {"Cache-Control": "public, max-age=300", "Content-Security-Policy": SITE_CSP}
FEED = {"Cache-Control": "public, max-age=300", "Content-Type": "application/atom+xml; charset=utf-8"}
# An asset under its current hashed name never changes; any other name may.
ASSET_FOREVER = "public, max-age=31536000, immutable"
ASSET_SHORT = "public, max-age=300"
# An SVG opened on its own is a document that could run script: sandbox it.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


class CommonHeaders:
    """ASGI middleware: the common headers on every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in COMMON.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
