"""`newsletter send` and `status` end to end: outbox default, a real SMTP server, state in SQLite."""

from __future__ import annotations

import email
import email.policy
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from newsletter.send.ratelimit import HourlyCap, RateLimiter, TokenBucket
from newsletter.state import campaigns, deliveries
from newsletter.state.engine import engine_for
from newsletter.state.lock import Lock
from newsletter.state.schema import deliveries as deliveries_table
from newsletter.state.schema import locks
from newsletter.state.suppressions import reason_for, suppress

from .helpers import FAST, TLS, Cli, config_of, counts, write_list
from .smtpd import SmtpServer

pytestmark = pytest.mark.usefixtures("database")


def test_default_outbox_writes_one_eml_per_subscriber(cli: Cli, folder: Path) -> None:
    result = cli("send", "latest", "--yes")
    assert result.exit_code == 0, result.output
    files = sorted((folder / "outbox" / "2026-11-23-welcome").glob("*.eml"))
    assert len(files) == 4  # the example list's four active rows
    tos = sorted(email.message_from_bytes(f.read_bytes(), policy=email.policy.default)["To"] for f in files)
    assert tos == [
        "Ada Lovelace <ada@example.com>",
        "Grace Hopper <grace@example.org>",
        "Renée Ça Va <renee@example.net>",
        "alan@example.com",
    ]
    assert "sent 4, failed permanently 0, deferred 0, skipped 0" in result.output
    again = cli("send", "latest", "--yes")
    assert again.exit_code == 2
    assert "was already sent (4 sent" in again.stderr and "--resend" in again.stderr
    resent = cli("send", "latest", "--yes", "--resend")
    assert resent.exit_code == 0 and "sent 4," in resent.output
    assert len(list((folder / "outbox").glob("2026-11-23-welcome-r2/*.eml"))) == 4
    status = cli("status")
    assert status.output.count("2026-11-23-welcome [") == 2 and "(resend 1)" in status.output


def test_all_accept_each_subscriber_exactly_once_personalized(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    addresses = write_list(folder, 40, cli)
    cli.env.update({**smtp_server.env(), **FAST})
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    received = smtp_server.handler.received
    assert Counter(r.rcpt_tos[0] for r in received) == Counter(addresses)
    for item in received:
        msg = item.message
        number = item.rcpt_tos[0][6:9]
        assert msg["To"] == f"Reader {number} <reader{number}@example.org>"
        assert "Hi Reader," in msg.get_body(("plain",)).get_content()  # the first name of "Reader NNN"
        assert f"reader{number}@example.org" in msg.get_body(("html",)).get_content()
    ids = {r.message["Message-ID"] for r in received}
    assert len(ids) == 40
    assert counts(cli) == {"sent": 40}
    assert f"campaign {TLS} finished" in result.output


def test_confirmation_prompt_dry_run_and_draft(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    write_list(folder, 5, cli)
    cli.env.update({**smtp_server.env(), **FAST})
    no = cli("send", TLS, input="n\n")
    assert no.exit_code == 1
    assert "recipients: 5" in no.output and f"smtp 127.0.0.1:{smtp_server.port}" in no.output
    assert "subject:    How TLS certificates really get checked" in no.output
    dry = cli("send", TLS, "--dry-run")
    assert dry.exit_code == 0 and "dry run: 5 messages rendered" in dry.output
    assert smtp_server.handler.received == []
    assert campaigns.campaigns_for(engine_for(config_of(cli))) == []
    yes = cli("send", TLS, input="y\n")
    assert yes.exit_code == 0 and "sent 5," in yes.output
    article = folder / "issues" / TLS.replace("tls-certificates", "draft-x")
    article = article.with_suffix(".md")
    article.write_text("---\ntitle: Draft\ndate: 2026-11-30\ndraft: true\n---\nBody\n", encoding="utf-8")
    draft = cli("send", article.stem, "--yes")
    assert draft.exit_code == 2 and "is a draft (draft: true)" in draft.stderr and "send-test" in draft.stderr


class FirstTryRefused:
    """451 for some addresses at their first RCPT, accepted afterwards."""

    def __init__(self, unlucky: set[str]) -> None:
        self.unlucky = set(unlucky)

    def __call__(self, address: str) -> str | None:
        if address in self.unlucky:
            self.unlucky.discard(address)
            return "451 4.7.1 Greylisted, try again later"
        return None


def test_451_retried_and_delivered_once(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    addresses = write_list(folder, 30, cli)
    smtp_server.handler.rcpt_reply = FirstTryRefused(set(addresses[::4]))
    cli.env.update({**smtp_server.env(), **FAST})
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    assert Counter(smtp_server.handler.recipients()) == Counter(addresses)
    assert counts(cli) == {"sent": 30}
    engine = engine_for(config_of(cli))
    retried = engine.connect().execute(select(deliveries_table.c.attempts, deliveries_table.c.email)).all()
    assert sorted(e for a, e in retried if a == 2) == sorted(addresses[::4])


def test_550_failed_with_reply_and_suppressed(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    addresses = write_list(folder, 30, cli)
    bad = set(addresses[1::10])
    smtp_server.handler.rcpt_reply = lambda a: "550 5.1.1 No such user here" if a in bad else None
    cli.env.update({**smtp_server.env(), **FAST})
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    assert "sent 27, failed permanently 3" in result.output
    assert sorted(smtp_server.handler.recipients()) == sorted(set(addresses) - bad)
    config = config_of(cli)
    engine = engine_for(config)
    for address in bad:
        assert reason_for(engine, address) == "bounced"
    assert reason_for(engine, addresses[0]) is None
    assert counts(cli) == {"sent": 27, "failed": 3}
    status = cli("status", TLS)
    assert "finished; 27 sent, 3 failed of 30" in status.output
    assert "550 5.1.1 No such user here" in status.output
    # The next issue skips the suppressed addresses.
    other = "2026-11-16-password-managers"
    smtp_server.handler.received.clear()
    assert cli("send", other, "--yes").exit_code == 0
    assert sorted(smtp_server.handler.recipients()) == sorted(set(addresses) - bad)
    assert "skipped 3" in cli("status", other).output or counts(cli, other)["skipped"] == 3


def test_failure_ratio_stops_and_suppresses_nobody(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    addresses = write_list(folder, 60, cli)
    smtp_server.handler.rcpt_reply = lambda a: "550 Relaying denied"
    cli.env.update({**smtp_server.env(), **FAST, "NEWSLETTER_SMTP_FAILURE_RATIO_MIN_SAMPLE": "10"})
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 1
    assert "newsletter: error: stopped: " in result.stderr and "max_failure_ratio" in result.stderr
    assert "550 Relaying denied" in result.stderr
    engine = engine_for(config_of(cli))
    assert all(reason_for(engine, a) is None for a in addresses)
    state = counts(cli)
    assert state.get("sent", 0) == 0 and state.get("failed", 0) == 0
    assert state["deferred"] + state["pending"] == 60
    # Once the relay is fixed, the same command finishes the campaign.
    smtp_server.handler.rcpt_reply = None
    again = cli("send", TLS, "--yes")
    assert again.exit_code == 0, again.output
    assert Counter(smtp_server.handler.recipients()) == Counter(addresses)


def test_suppressed_and_removed_subscribers_are_skipped_on_resume(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    addresses = write_list(folder, 10, cli)
    cli.env.update({**smtp_server.env(), **FAST})
    config = config_of(cli)
    engine = engine_for(config)
    # A half-done campaign: rows exist, nothing sent; then one unsubscribes and one leaves the list.
    from newsletter.content.articles import resolve_article
    from newsletter.content.issue import issue_for
    from newsletter.content.subscribers import iter_subscribers

    issue = issue_for(resolve_article(TLS, config.path("issues")))
    campaign = campaigns.create_campaign(engine, issue.key, issue.content_hash, 1, issue.subject, issue.title)
    deliveries.add_subscribers(
        engine, campaign.id, campaigns.begin_run(engine, campaign.id), iter_subscribers(config.path("subscribers"))
    )
    suppress(engine, addresses[0], "unsubscribed")
    write_list(folder, 9)  # the last address left the list
    (folder / "subscribers.csv").write_text(
        (folder / "subscribers.csv").read_text() + "late@example.org,Late Comer,active,X\n", encoding="utf-8"
    )
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.handler.recipients()) == sorted([*addresses[1:9], "late@example.org"])
    assert counts(cli) == {"sent": 9, "skipped": 2}


def test_wrong_credentials_clear_error_nothing_sent(cli: Cli, folder: Path) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (b"editor", b"right")
        return AuthResult(success=ok, handled=False)

    write_list(folder, 5, cli)
    with SmtpServer(auth_required=True, auth_require_tls=False, authenticator=authenticator) as server:
        cli.env.update(
            {**server.env(), **FAST, "NEWSLETTER_SMTP_USERNAME": "editor", "NEWSLETTER_SMTP_PASSWORD": "wrong"}
        )
        cli.env["NEWSLETTER_SMTP_ALLOW_PLAINTEXT_AUTH"] = "true"  # the test server has no TLS
        result = cli("send", TLS, "--yes")
        assert result.exit_code == 1
        assert result.stderr.count("newsletter: error:") == 1
        assert "SMTP login to 127.0.0.1" in result.stderr and "as 'editor' failed (535" in result.stderr
        assert "NEWSLETTER_SMTP_PASSWORD" in result.stderr and "Traceback" not in result.output
        assert server.handler.received == []
        assert counts(cli).get("sent", 0) == 0
        # Without a username the server says 530: also one clear line.
        del cli.env["NEWSLETTER_SMTP_USERNAME"]
        nouser = cli("send", TLS, "--yes")
        assert nouser.exit_code == 1 and "requires a login (530" in nouser.stderr
        cli.env["NEWSLETTER_SMTP_USERNAME"] = "editor"
        cli.env["NEWSLETTER_SMTP_PASSWORD"] = "right"
        assert cli("send", TLS, "--yes").exit_code == 0
        assert len(server.handler.received) == 5


def test_second_sender_is_refused_while_a_live_one_holds_the_lock(cli: Cli, folder: Path) -> None:
    engine = engine_for(config_of(cli))
    assert Lock(engine, "campaign:2026-11-23-welcome").try_acquire()
    with engine.begin() as conn:  # held by a live process: this one (the test runner)
        conn.execute(update(locks).values(pid=os.getpid()))
    result = cli("send", "latest", "--yes")
    assert result.exit_code == 2
    assert f"campaign 2026-11-23-welcome is being sent by pid {os.getpid()}" in result.stderr
    assert not (folder / "outbox" / "2026-11-23-welcome").exists()
    with engine.begin() as conn:  # a holder that died: taken over
        conn.execute(update(locks).values(pid=2**22 + 12345))
    assert cli("send", "latest", "--yes").exit_code == 0


def test_edited_issue_after_partial_send(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    addresses = write_list(folder, 6, cli)
    cli.env.update({**smtp_server.env(), **FAST})
    first_half = set(addresses[:3])
    smtp_server.handler.rcpt_reply = lambda a: None if a in first_half else "451 later"
    cli.env["NEWSLETTER_SMTP_MAX_ATTEMPTS"] = "1"
    assert cli("send", TLS, "--yes").exit_code == 0
    assert counts(cli) == {"sent": 3, "deferred": 3}
    smtp_server.handler.rcpt_reply = None
    article = folder / "issues" / f"{TLS}.md"
    article.write_text(article.read_text().replace("really get checked", "really get checked (fixed)"))
    asked = cli("send", TLS, input="abort\n")
    assert asked.exit_code == 1 and "was edited after a partial send: 3 subscribers" in asked.output
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    assert "--yes picks the safe choice" in result.stderr
    assert Counter(smtp_server.handler.recipients()) == Counter(addresses)  # nobody twice
    later = [r for r in smtp_server.handler.received if r.rcpt_tos[0] not in first_half]
    assert all("checked (fixed)" in r.message.get_body(("html",)).get_content() for r in later)
    assert "superseded" in cli("status", TLS).output


def test_token_bucket_and_hourly_cap_with_a_fake_clock() -> None:
    now = [100.0]
    bucket = TokenBucket(10, clock=lambda: now[0])
    slots = [bucket.reserve(now[0]) for _ in range(5)]
    assert slots == pytest.approx([100.0, 100.1, 100.2, 100.3, 100.4])
    burst = TokenBucket(10, capacity=3)
    assert [round(burst.reserve(0.0), 3) for _ in range(5)] == [0.0, 0.0, 0.0, 0.1, 0.2]
    cap = HourlyCap(3, clock=lambda: now[0])
    cap.seed([3000.0, 10.0])  # two sends in the last hour
    assert cap.earliest(now[0]) == now[0]
    cap.record(now[0])
    assert cap.earliest(now[0]) == now[0] - 3000.0 + 3600.0
    limiter = RateLimiter(0, 0)
    assert limiter.unlimited
