"""Messages built in SMTP's wire form (CRLF, dot-stuffed once per issue) arrive exactly as built.

aiosmtpd un-stuffs what it receives and keeps the original bytes, so a message that went over the
wire must equal the plain build of the same message, byte for byte; Postfix's smtp-sink (when
installed) must accept every message of a send.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from newsletter.content.articles import load_article
from newsletter.content.issue import issue_for
from newsletter.content.names import first_name_of
from newsletter.content.subscribers import Subscriber
from newsletter.render.issue import render_issue
from newsletter.render.mime import MessageFactory, dot_stuff
from newsletter.send import smtp_wire

from .helpers import Cli, config_of, write_article, write_list
from .smtpd import SmtpServer, free_port

DOTTY = """---
title: Dots
date: 2026-11-20
summary: Lines that start with a dot.
---

.hidden files start with a dot.

A paragraph long enough that quoted-printable breaks it somewhere, and then
.a line that starts with a dot again, and a lone dot on its own line:

.

```
.profile
..double
```
"""


def _unstuff(data: bytes) -> bytes:
    return re.sub(rb"(?m)^\.\.", b".", data)


def _same_boundary_and_date(data: bytes) -> bytes:
    """Each factory draws its own MIME boundary and dates its messages when made: set both aside."""
    data = re.sub(rb"=_nl_[0-9a-f]{24}", b"=_nl_boundary", data)
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", data)


def _subscribers() -> list[Subscriber]:
    names = [".Dot", "..Two dots", "Ada Lovelace", ".", "Renée ."]
    return [
        Subscriber(email=f"r{i}@example.org", name=n, fields={"email": f"r{i}@example.org", "name": n}, line=i + 2)
        for i, n in enumerate(names)
    ]


def test_wire_form_is_the_plain_message_dot_stuffed(cli: Cli, folder: Path) -> None:
    path = write_article(folder, "2026-11-20-dots.md", DOTTY)
    config = config_of(cli)
    rendered = render_issue(issue_for(load_article(path)), config)
    plain = MessageFactory(rendered, config, message_key="k")
    wire = MessageFactory(rendered, config, message_key="k", wire=True)
    for subscriber in _subscribers():
        a, b = (_same_boundary_and_date(f.build(subscriber)) for f in (plain, wire))
        assert b == dot_stuff(a)
        assert _unstuff(b) == a and b"\n." not in b.replace(b"\n..", b"")
        assert b"\r\n" in a and re.search(rb"(?<!\r)\n", a) is None  # CRLF only


@pytest.mark.usefixtures("database")
def test_a_send_arrives_exactly_as_rendered(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    """Every line that starts with a dot (article text, code, a name, a lone dot) arrives intact."""
    path = write_article(folder, "2026-11-20-dots.md", DOTTY)
    subscribers = _subscribers()
    (folder / "subscribers.csv").write_text(
        "email,name\n" + "".join(f'{s.email},"{s.name}"\n' for s in subscribers), encoding="utf-8"
    )
    cli.env.update({**smtp_server.env(), "NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv"})
    assert smtp_wire.wire_supported()
    result = cli("send", "2026-11-20-dots", "--yes")
    assert result.exit_code == 0, result.output
    received = {r.rcpt_tos[0]: r for r in smtp_server.handler.received}
    assert sorted(received) == sorted(s.email for s in subscribers)
    config = config_of(cli)
    rendered = render_issue(issue_for(load_article(path)), config)
    links = MessageFactory(rendered, config).unsubscriber
    for subscriber in subscribers:
        fields = {**subscriber.fields, "first_name": first_name_of(subscriber.name)}  # as the list derives it
        html, text = rendered.personalize(fields, links.links(subscriber.email).url)
        message = received[subscriber.email].message
        got_text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
        got_html = message.get_body(("html",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
        assert got_text == text and got_html == html.replace("\r\n", "\n")
        assert message["To"].addresses[0].display_name == subscriber.name
    assert "\n.hidden files start with a dot." in text and "\n.\n" in text and "\n..double" in html


def test_the_plain_path_when_aiosmtplib_is_not_a_tested_version(
    cli: Cli, folder: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp_wire, "SUPPORTED", ((0, 0, 1), (0, 0, 2)))
    assert not smtp_wire.wire_supported()
    write_article(folder, "2026-11-20-dots.md", DOTTY)
    write_list(folder, 3, cli)
    cli.env.update(smtp_server.env())
    assert cli("send", "2026-11-20-dots", "--yes").exit_code == 0
    assert sorted(smtp_server.handler.recipients()) == [f"reader00{i}@example.org" for i in range(3)]
    assert all(b"\r\n.hidden files" in r.data for r in smtp_server.handler.received)


@pytest.mark.skipif(
    shutil.which("smtp-sink") is None and not Path("/usr/sbin/smtp-sink").exists(),
    reason="Postfix's smtp-sink is not installed (apt-get install postfix)",
)
def test_postfix_smtp_sink_accepts_every_wire_message(cli: Cli, folder: Path) -> None:
    write_article(folder, "2026-11-20-dots.md", DOTTY)
    write_list(folder, 200, cli)
    port = free_port()
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    user = ["-u", "nobody"] if Path("/proc/self").stat().st_uid == 0 else []
    proc = subprocess.Popen(
        [sink, *user, f"127.0.0.1:{port}", "64"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "smtp-sink did not start"
                time.sleep(0.05)
        cli.env.update(
            {
                "NEWSLETTER_DELIVERY_BACKEND": "smtp",
                "NEWSLETTER_SMTP_HOST": "127.0.0.1",
                "NEWSLETTER_SMTP_PORT": str(port),
                "NEWSLETTER_SMTP_SECURITY": "none",
            }
        )
        result = cli("send", "2026-11-20-dots", "--yes")
        assert result.exit_code == 0, result.output
        assert "sent 200, failed permanently 0, deferred 0" in result.output
    finally:
        proc.terminate()
        proc.wait(timeout=10)
