"""Reading a feed's bytes: an http(s) URL (httpx, with a deadline and a size cap) or a local file.

Nothing else is read: no file://, ftp:// or feed:// addresses, and the bytes are handed to the parser
as bytes (feedparser would take a string for a path or a URL and open it itself). The size cap holds
for the decoded body, so a small gzip-compressed response cannot unpack into gigabytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from .. import __version__
from ..config import Config
from ..config.checks import feed_url_problem
from ..errors import ContentError, FeedError

ACCEPT = "application/atom+xml, application/rss+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
USER_AGENT = f"quillpost/{__version__} (newsletter feed pull)"
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Source:
    """Where a feed is read from: `name` is how messages and the state database call it."""

    name: str
    url: str = ""  # http(s)
    path: Path | None = None  # a local file

    @property
    def is_http(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True)
class Fetched:
    """The feed's bytes, or None when the server said it has not changed since the validators given."""

    body: bytes | None
    etag: str = ""
    last_modified: str = ""
    base: str = ""  # the address relative links in the feed are read against (after redirects)


def source_for(config: Config, given: str | None) -> Source:
    """The feed a pull reads: `given` on the command line, else `[feed] url`."""
    text = given if given is not None else config.feed.url
    where = "URL_OR_FILE" if given is not None else f"{config.where}: [feed] url"
    if not text:
        raise ContentError(
            "no feed to pull: set [feed] url in newsletter.toml (https://yourblog.example/feed/), "
            "or give one: newsletter feed pull URL_OR_FILE"
        )
    problem = feed_url_problem(text)
    if problem:
        raise ContentError(f"{where}: {problem}")
    if "://" in text:
        return Source(text, url=text)
    path = Path(text).expanduser()
    if given is None and not path.is_absolute():
        path = config.root / path
    return Source(str(path.resolve()), path=path)


def read(source: Source, *, timeout: float, max_bytes: int, etag: str = "", last_modified: str = "") -> Fetched:
    """The feed, at most `max_bytes`, within `timeout` seconds in all; one-line FeedErrors otherwise."""
    if source.path is not None:
        return _read_file(source.path, max_bytes)
    return _read_http(source.url, timeout, max_bytes, etag, last_modified)


def _too_large(name: str, max_bytes: int) -> FeedError:
    return FeedError(
        f"{name}: the feed is larger than {max_bytes / 1_000_000:g} MB; nothing was read "
        f"(raise [feed] max_size_mb if it really is that large)"
    )


def _read_file(path: Path, max_bytes: int) -> Fetched:
    try:
        if not path.is_file():
            raise ContentError(f"{path}: no such feed file; check the path")
        if path.stat().st_size > max_bytes:
            raise _too_large(str(path), max_bytes)
        return Fetched(path.read_bytes())
    except OSError as exc:
        raise ContentError(f"{path}: cannot read the feed file ({exc.strerror})") from None


def _read_http(url: str, timeout: float, max_bytes: int, etag: str, last_modified: str) -> Fetched:
    headers = {"Accept": ACCEPT, "User-Agent": USER_AGENT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + timeout
    timed_out = FeedError(
        f"{url}: the feed did not arrive within {timeout:g} s; check the address, or raise [feed] timeout"
    )
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code == 304:
                return Fetched(None, etag, last_modified, str(response.url))
            if response.status_code != 200:
                reason = response.reason_phrase or "error"
                raise FeedError(f"{url}: the server answered {response.status_code} {reason}; check [feed] url")
            length = response.headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes and "content-encoding" not in response.headers:
                raise _too_large(url, max_bytes)
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(url, max_bytes)
                if time.monotonic() > deadline:
                    raise timed_out
                chunks.append(chunk)
            return Fetched(
                b"".join(chunks),
                response.headers.get("etag", ""),
                response.headers.get("last-modified", ""),
                str(response.url),
            )
    except httpx.TimeoutException:
        raise timed_out from None
    except httpx.TooManyRedirects:
        raise FeedError(f"{url}: more than {MAX_REDIRECTS} redirects; give the feed's final address") from None
    except httpx.UnsupportedProtocol:
        raise FeedError(f"{url}: redirected to an address that is not http(s); give the feed's own URL") from None
    except httpx.HTTPError as exc:
        problem = _first_line(exc)
        raise FeedError(f"{url}: cannot read the feed ({problem}); check the address and the network") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
