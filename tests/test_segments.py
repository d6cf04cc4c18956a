"""Tags and segments: `send --tag` and front matter `audience:`, each its own campaign, nobody gets an issue twice.

Through the real CLI on SQLite and PostgreSQL, against a real aiosmtpd server or the outbox.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from newsletter.state import campaigns
from newsletter.state.engine import engine_for

from .helpers import FAST, TLS, Cli, config_of, write_article
from .smtpd import SmtpServer

pytestmark = pytest.mark.usefixtures("database")
LIST = (
    "email,name,tags\n"
    "ada@example.com,Ada Lovelace,paid;beta\n"
    "grace@example.org,Grace Hopper,paid\n"
    "renee@example.net,Renée,beta\n"
    "alan@example.com,Alan,\n"
    "edsger@example.nl,Edsger,press\n"
)


@pytest.fixture
def tagged(cli: Cli) -> Cli:
    (cli.folder / "subscribers.csv").write_text(LIST, encoding="utf-8")
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "subscribers.csv"
    return cli


def outbox(folder: Path, key: str) -> list[str]:
    return sorted(p.name.rsplit("-", 1)[0] for p in (folder / "outbox" / key).glob("*.eml"))


def test_send_tag_reaches_anyone_with_any_of_the_tags(tagged: Cli, smtp_server: SmtpServer) -> None:
    cli = tagged
    cli.env.update({**smtp_server.env(), **FAST})
    asked = cli("send", TLS, "--tag", "Paid", "--tag", "press", input="n\n")
    assert asked.exit_code == 1
    assert "audience:   subscribers tagged paid or press" in asked.output and "recipients: 3" in asked.output
    assert f"Send {TLS}@paid+press now?" in asked.output
    result = cli("send", TLS, "--tag", "paid", "--tag", "press", input="y\n")
    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.handler.recipients()) == ["ada@example.com", "edsger@example.nl", "grace@example.org"]
    assert f"campaign {TLS}@paid+press finished" in result.output
    status = cli("status", TLS).output
    assert f"{TLS}@paid+press [" in status and "finished; 3 sent of 3" in status
    # The same segment again is "already sent"; the rest of the list gets it, the segment nobody twice.
    again = cli("send", TLS, "--tag", "press", "--tag", "paid", "--yes")
    assert again.exit_code == 2 and f"campaign {TLS}@paid+press was already sent" in again.stderr
    smtp_server.handler.received.clear()
    everyone = cli("send", TLS, input="y\n")
    assert "audience:   everyone on the list" in everyone.output
    assert "recipients: 2 (3 got it in another send)" in everyone.output
    assert sorted(smtp_server.handler.recipients()) == ["alan@example.com", "renee@example.net"]
    assert "sent 2, failed permanently 0, deferred 0, skipped 3" in everyone.output


def test_front_matter_audience_and_tag_overriding_it(tagged: Cli, folder: Path) -> None:
    cli = tagged
    write_article(
        folder, "2026-12-01-beta.md", "---\ntitle: For testers\ndate: 2026-12-01\naudience: [Beta]\n---\nHello.\n"
    )
    result = cli("send", "2026-12-01-beta", "--yes")
    assert result.exit_code == 0, result.output
    assert outbox(folder, "2026-12-01-beta@beta") == ["ada@example.com", "renee@example.net"]
    # A send to the whole list afterwards reaches only the others; one to a tag nobody new has, nobody.
    assert cli("send", "2026-12-01-beta", "--tag", "paid", "--yes").exit_code == 0
    assert outbox(folder, "2026-12-01-beta@paid") == ["grace@example.org"]
    # --resend of a segment sends to the whole segment again (it is explicit).
    assert cli("send", "2026-12-01-beta", "--resend", "--yes").exit_code == 0
    assert outbox(folder, "2026-12-01-beta@beta-r2") == ["ada@example.com", "renee@example.net"]
    write_article(folder, "2026-12-02-bad.md", "---\ntitle: Bad\ndate: 2026-12-02\naudience: {a: 1}\n---\nx\n")
    bad = cli("send", "2026-12-02-bad", "--yes")
    assert bad.exit_code == 2 and "2026-12-02-bad.md: audience: expected a list of tags like [paid, beta]" in bad.stderr


def test_an_unknown_tag_stops_before_any_campaign_exists(tagged: Cli, folder: Path) -> None:
    cli = tagged
    result = cli("send", TLS, "--tag", "piad", "--yes")
    assert result.exit_code == 2
    assert "--tag: no subscriber has the tag 'piad'; check the spelling (tags in use: beta, paid, press)" in (
        result.stderr
    )
    assert campaigns.campaigns_for(engine_for(config_of(cli))) == []
    write_article(folder, "2026-12-03-typo.md", "---\ntitle: T\ndate: 2026-12-03\naudience: [bta]\n---\nx\n")
    typo = cli("send", "2026-12-03-typo", "--dry-run")
    assert typo.exit_code == 2 and "2026-12-03-typo.md: audience: no subscriber has the tag 'bta'" in typo.stderr


def test_dry_run_of_a_segment_counts_it(tagged: Cli) -> None:
    result = tagged("send", TLS, "--tag", "beta", "--dry-run")
    assert result.exit_code == 0 and "dry run: 2 messages rendered" in result.output
    digest = tagged("send", "--digest", "--tag", "beta", "--yes")
    assert digest.exit_code == 2 and "--digest sends the digest of the period to everyone: no ISSUE, no --resend, no --tag" in digest.stderr
    assert Counter(c.key for c in campaigns.campaigns_for(engine_for(config_of(tagged)))) == Counter()
