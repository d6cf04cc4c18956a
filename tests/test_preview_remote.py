"""`newsletter preview` open to other machines: only with --allow-remote, and only under the names given.

A page elsewhere can point a name of its own at this machine (DNS rebinding) and have a visitor's
browser read drafts or post the Send-test form; the preview answers only the Host names it was given.
The server is a real `newsletter preview` process bound to 0.0.0.0; requests go to 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .helpers import Cli
from .smtpd import SmtpServer, free_port

pytestmark = pytest.mark.e2e
TLS = "2026-11-09-tls-certificates"
ALLOW = ["--allow-remote", "MyBox.lan", "--allow-remote", "192.0.2.7"]


@pytest.fixture
def remote_preview(folder: Path, smtp_server: SmtpServer) -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", "--host", "0.0.0.0", "--port", str(port), *ALLOW],
        cwd=folder,
        env={**os.environ, **smtp_server.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "preview did not start"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_only_the_names_given_are_served(remote_preview: int, smtp_server: SmtpServer) -> None:
    url = f"http://127.0.0.1:{remote_preview}"
    for host, status in (
        ("mybox.lan", 200),
        (f"MyBox.lan:{remote_preview}", 200),
        ("192.0.2.7", 200),
        (f"127.0.0.1:{remote_preview}", 200),
        ("localhost", 200),
        ("evil.example", 400),  # a rebound name: refused before any route runs
        (f"attacker.mybox.lan:{remote_preview}", 400),
        ("192.0.2.8", 400),
    ):
        assert httpx.get(f"{url}/issue/{TLS}", headers={"Host": host}).status_code == status, host
    # The Send-test form from a rebound name: refused, nothing sent.
    page = httpx.get(f"{url}/issue/{TLS}", headers={"Host": "mybox.lan"}).text
    token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert token
    form = {"to": "victim@example.net", "csrf": token.group(1)}
    rebound = httpx.post(
        f"{url}/issue/{TLS}/send-test", data=form, headers={"Host": "evil.example", "Origin": "http://evil.example"}
    )
    assert rebound.status_code == 400 and smtp_server.handler.received == []
    # From the allowed name's own page, the same form goes through.
    sent = httpx.post(
        f"{url}/issue/{TLS}/send-test",
        data=form,
        headers={"Host": "mybox.lan", "Origin": "http://mybox.lan", "Accept": "application/json"},
    )
    assert sent.status_code == 200 and smtp_server.handler.recipients() == ["victim@example.net"]


def test_the_names_can_come_from_the_config_too(cli: Cli, folder: Path) -> None:
    cli.env["NEWSLETTER_PREVIEW_HOST"] = "0.0.0.0"
    refused = cli("preview")
    assert refused.exit_code == 2 and "--allow-remote NAME" in refused.stderr
    from newsletter.cli.preview_cmds import remote_names

    assert remote_names("0.0.0.0", (), "mybox.lan, Other.Lan") == ["mybox.lan", "other.lan"]
    assert remote_names("127.0.0.1", (), "") == []
