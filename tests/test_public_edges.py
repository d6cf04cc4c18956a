"""`serve`'s edges under a real uvicorn: odd addresses are 404 with every security header and nothing logged,
errors carry the headers too, and an unsubscribe link works only as it was sent (or as release 0.1 sent it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from newsletter.config import Config, load_config
from newsletter.render.mime import list_id
from newsletter.render.unsubscribe import make_token
from newsletter.state.engine import engine_for
from newsletter.state.suppressions import reason_for

from .helpers import Cli
from .live import LiveServer

SECRET = "k" * 40
COMMON = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}
# Release 0.1's link for ada@example.com on this list with SECRET (made by that release's code).
OLD_TOKEN = "Ms9gsqbYuA1f9ChD9cxBsQhJNtoBxn_drSOeGV_WEtt_ix6UTOFgHNCoSJYlWX5oN6loYiyZHQAZvZNyIfg7"


@pytest.fixture
def config(cli: Cli) -> Config:
    cli.env.update({"NEWSLETTER_SECRET_KEY": SECRET, "NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org"})
    return load_config(cli.folder / "newsletter.toml", env={**os.environ, **cli.env})


@pytest.fixture
def server(config: Config) -> Iterator[LiveServer]:
    with LiveServer(config) as live:
        yield live


def has_common_headers(response: httpx.Response) -> bool:
    return all(response.headers.get(name) == value for name, value in COMMON.items())


@pytest.mark.parametrize(
    "path",
    [
        "/archive/" + "a" * 300,
        "/archive/" + "a" * 300 + ".md",
        "/archive/%00",
        "/archive/..%2F..%2Fnewsletter.toml",
        "/archive/page/999999999999999999999",
        "/assets/" + "b" * 300 + ".png",
        "/no-such-page",
    ],
    ids=["300-char slug", "300-char slug.md", "nul", "traversal", "huge page", "300-char asset", "unknown"],
)
def test_odd_addresses_are_404_with_headers_and_nothing_logged(
    server: LiveServer, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = httpx.get(server.url + path)
    assert response.status_code == 404 and has_common_headers(response)
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "Traceback" not in response.text and "Errno" not in response.text
    assert [r for r in caplog.records if r.name.startswith("newsletter") or r.levelno >= logging.WARNING] == []


def test_405_and_500_carry_the_security_headers(server: LiveServer, folder: Path) -> None:
    not_allowed = httpx.post(server.url + "/archive")
    assert not_allowed.status_code == 405 and has_common_headers(not_allowed)
    # An unexpected exception (a web template dividing by zero): answered outside the app's middleware.
    (folder / "templates" / "web").mkdir(parents=True, exist_ok=True)
    (folder / "templates" / "web" / "home.html").write_text("{{ 1 / 0 }}")
    broken = httpx.get(server.url + "/")
    assert broken.status_code == 500 and has_common_headers(broken)
    assert "ZeroDivisionError" not in broken.text and "division" not in broken.text


def altered_spellings(token: str) -> list[str]:
    middle = len(token) // 2
    return [
        token + "==",
        token + "!!",
        token + "%00",
        token[:middle] + "!*~" + token[middle:],
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        token.upper(),
    ]


def test_only_the_link_as_sent_unsubscribes(config: Config, server: LiveServer) -> None:
    engine = engine_for(config)
    token = make_token(SECRET, list_id(config), "grace@example.org")
    for variant in altered_spellings(token):
        for response in (
            httpx.post(f"{server.url}/unsubscribe/{variant}", data={"List-Unsubscribe": "One-Click"}),
            httpx.get(f"{server.url}/unsubscribe/{variant}"),
        ):
            assert response.status_code == 400 and has_common_headers(response), variant
    assert reason_for(engine, "grace@example.org") is None
    done = httpx.post(f"{server.url}/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and reason_for(engine, "grace@example.org") == "unsubscribed"


def test_a_link_from_an_email_sent_by_release_0_1_still_unsubscribes(config: Config, server: LiveServer) -> None:
    assert list_id(config) == "privacy-notes.example.com"  # the list the old link was made for
    engine = engine_for(config)
    for variant in altered_spellings(OLD_TOKEN):
        assert httpx.post(f"{server.url}/unsubscribe/{variant}").status_code == 400
    response = httpx.post(f"{server.url}/unsubscribe/{OLD_TOKEN}", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and reason_for(engine, "ada@example.com") == "unsubscribed"
