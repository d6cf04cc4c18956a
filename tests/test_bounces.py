"""Bounces and complaints after the send, end to end through the CLI: a real send to aiosmtpd (the VERP
envelope sender per recipient), real-world reports filled in for it and delivered into a Maildir or
piped to `bounces receive`, the rules on the state database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.bounces.maildir import MaildirMailbox
from newsletter.errors import MailboxError
from newsletter.send.verp import Verp
from newsletter.state import bounces as store
from newsletter.state.engine import engine_for
from newsletter.state.schema import bounce_events
from newsletter.state.statuses import BounceKind
from newsletter.state.suppressions import reason_for

from .bouncemail import BOUNCES, SECRET, Sent, deliver, fill, make_maildir, sent_by_recipient
from .helpers import FAST, TLS, Cli, article, config_of, write_list
from .smtpd import SENDER_ADDRESS, SmtpServer

pytestmark = pytest.mark.usefixtures("database")

VERP = re.compile(r"bounces\+([a-z0-9-]+)@example\.com")
MAILDIR = {"NEWSLETTER_BOUNCES_MAILDIR": "bounces"}


def send_list(cli: Cli, folder: Path, server: SmtpServer, count: int, issue: str = TLS) -> tuple[list[str], dict]:
    """Send `issue` to a list of `count` over SMTP with the bounce address set; (addresses, what was sent)."""
    addresses = write_list(folder, count, cli)
    cli.env.update({**server.env(), **FAST, **BOUNCES, **MAILDIR})
    server.handler.received.clear()
    result = cli("send", issue, "--yes")
    assert result.exit_code == 0, result.output
    return addresses, sent_by_recipient(server.handler.received)


def events(cli: Cli) -> list[tuple[str, str, str]]:
    engine = engine_for(config_of(cli))
    with engine.connect() as conn:
        rows = conn.execute(bounce_events.select().order_by(bounce_events.c.id)).mappings().all()
    return [(r["email"], r["kind"], r["identified"]) for r in rows]


def lines_by_name(output: str) -> dict[str, str]:
    """`bounces fetch` output: the line of each message, by the name it was delivered under."""
    found = {}
    for line in output.splitlines():
        ref, sep, text = line.partition(": ")
        if sep and ref.startswith("new/"):
            found[ref.rpartition(".test-")[2]] = text
    return found


def test_each_message_goes_out_with_its_own_signed_verp_envelope_sender(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    addresses, sent = send_list(cli, folder, smtp_server, 6)
    assert sorted(sent) == addresses
    verp = Verp("bounces@example.com", SECRET)
    engine = engine_for(config_of(cli))
    tokens = set()
    for address, item in sent.items():
        match = VERP.fullmatch(item.verp)
        assert match, item.verp
        local = item.verp.partition("@")[0]
        assert len(local) < 64 and re.fullmatch(r"[a-z0-9+.-]+", local)
        token = verp.parse(match.group(1))
        assert token is not None and not token.test
        assert address.partition("@")[0] not in item.verp  # the token shows no address
        row = store.delivery(engine, token.number)
        assert row is not None and row.email == address and row.campaign_id == token.campaign_id
        assert verp.verify(token, address) and not verp.verify(token, addresses[0 if address != addresses[0] else 1])
        tokens.add(match.group(1))
    assert len(tokens) == 6
    # Test sends come back to the bounce address too, signed for the test address.
    smtp_server.handler.received.clear()
    assert cli("send-test", TLS, "--to", "editor@example.net").exit_code == 0
    (received,) = smtp_server.handler.received
    token = verp.parse(VERP.fullmatch(received.mail_from).group(1))  # type: ignore[union-attr]
    assert token is not None and token.test and verp.verify(token, "editor@example.net")
    # Without the setting, the From address stays the envelope sender.
    del cli.env["NEWSLETTER_BOUNCES_ADDRESS"]
    smtp_server.handler.received.clear()
    assert cli("send", TLS, "--yes", "--resend").exit_code == 0
    assert {r.mail_from for r in smtp_server.handler.received} == {SENDER_ADDRESS}
    # A bounce address without the secret its tokens are signed with: refused before anything is sent.
    cli.env.update(
        {"NEWSLETTER_BOUNCES_ADDRESS": "bounces@example.com", "NEWSLETTER_SECRET_KEY": "", "NEWSLETTER_NEWSLETTER_BASE_URL": ""}
    )
    smtp_server.handler.received.clear()
    refused = cli("send", "2026-11-16-password-managers", "--yes")
    assert refused.exit_code == 2 and smtp_server.handler.received == []
    assert refused.stderr.startswith("newsletter: error: NEWSLETTER_SECRET_KEY is not set but [bounces] address is")
    assert refused.stderr.count("\n") == 1


FIXTURES = [  # fixture, the recipient's index, its line after `bounces fetch`
    ("postfix-dsn.eml", 0, "hard bounce 5.1.1 reader000@example.org, {key}: suppressed as bounced"),
    ("gmail-bounce.eml", 1, "soft bounce 4.2.2 reader001@example.org, {key}: 1 of 3 soft bounces within 30d"),
    ("exchange-ndr.eml", 2, "hard bounce 5.0.0 reader002@example.org, {key}: suppressed as bounced"),
    ("ses-bounce.eml", 3, "hard bounce 5.1.1 reader003@example.org, {key}: suppressed as bounced"),
    ("yahoo-arf.eml", 4, "complaint (abuse) reader004@example.org, {key}: suppressed as complained"),
    ("out-of-office.eml", 5, "ignored: an automatic reply (Auto-Submitted: auto-replied)"),
    ("challenge-response.eml", 6, "ignored: a challenge-response message (a filter asking the sender to verify)"),
    ("delay-warning.eml", 7, "ignored: a delay warning (4.4.1): the relay is still trying, nothing failed yet"),
    ("forged-token.eml", 0, "skipped: a forged or stale VERP token in bounces+1-1-aaaaaaaaaaaa@example.com"),
    ("truncated.eml", 1, "skipped: a delivery report with no complete recipient entry (the message ends early"),
]


def test_every_fixture_is_classified_and_the_rules_follow_from_a_maildir(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    addresses, sent = send_list(cli, folder, smtp_server, 10)
    maildir = make_maildir(folder / "bounces")
    for name, index, _line in FIXTURES:
        deliver(maildir, fill(name, sent[addresses[index]]), name)
    result = cli("bounces", "fetch")
    assert result.exit_code == 0, result.output
    found = lines_by_name(result.output)
    for name, _index, line in FIXTURES:
        assert found[name].startswith(line.format(key=TLS)), (name, found[name])
    assert result.output.splitlines()[-1] == (
        "maildir bounces: 10 messages: 5 counted, 3 ignored, 2 skipped; 4 addresses suppressed"
    )
    engine = engine_for(config_of(cli))
    assert [reason_for(engine, a) for a in addresses[:6]] == ["bounced", None, "bounced", "bounced", "complained", None]
    # Every message moved to the processed folder, marked seen; a rerun changes nothing.
    assert list((maildir / "new").iterdir()) == []
    moved = list((maildir / ".Processed" / "cur").iterdir())
    assert len(moved) == 10 and all(p.name.endswith(":2,S") for p in moved)
    assert (maildir / ".Processed" / "maildirfolder").exists()
    before = events(cli)
    again = cli("bounces", "fetch")
    assert again.exit_code == 0 and again.output.endswith(
        ": 0 messages: 0 counted, 0 ignored, 0 skipped; 0 addresses suppressed\n"
    )
    assert events(cli) == before and [e[2] for e in before] == ["token"] * 5
    # status: per campaign, with rates of what was sent.
    status = cli("status", TLS)
    assert "  bounced 4 (40.00%; 3 hard, 1 soft), complained 1 (10.00%): over the 0.3% Gmail and Yahoo" in status.output
    # subscribers show: the suppression and every event.
    shown = cli("subscribers", "show", addresses[0].upper())
    assert shown.exit_code == 0, shown.output
    assert "status:    bounced: suppressed " in shown.output
    assert f"(bounce report: hard bounce 5.1.1, {TLS})" in shown.output
    assert f"hard bounce 5.1.1  {TLS}  (dsn): suppressed as bounced" in shown.output
    assert (
        "550 5.1.1 <reader000@example.org>: Recipient address rejected: User unknown in virtual mailbox table"
        in shown.output
    )
    soft = cli("subscribers", "show", addresses[1]).output
    assert "status:    active" in soft and "soft bounce 4.2.2" in soft and "1 of 3 soft bounces within 30d" in soft
    nothing = cli("subscribers", "show", "stranger@example.net").output
    assert "list:      not on the list" in nothing and "sent:      nothing yet" in nothing and "none" in nothing
    # The next send skips the bounced and the complaining; the soft bounce still gets it.
    smtp_server.handler.received.clear()
    assert cli("send", "2026-11-16-password-managers", "--yes").exit_code == 0
    assert sorted(smtp_server.handler.recipients()) == sorted(set(addresses) - {addresses[i] for i in (0, 2, 3, 4)})


def test_three_soft_bounces_from_three_campaigns_suppress_and_a_copy_counts_once(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    article(folder, "2026-11-30-extra", "2026-11-30")
    maildir = make_maildir(folder / "bounces")
    issues = [TLS, "2026-11-16-password-managers", "2026-11-30-extra"]
    lines = []
    for number, issue in enumerate(issues, 1):
        addresses, sent = send_list(cli, folder, smtp_server, 3, issue)
        report = fill("gmail-bounce.eml", sent[addresses[1]]).replace(b"9f41.GMR", f"{number}.GMR".encode())
        deliver(maildir, report, "soft")
        if number == 1:
            deliver(maildir, report, "copy")  # the same report twice (the relay sent it again)
        result = cli("bounces", "fetch")
        assert result.exit_code == 0, result.output
        lines.append(lines_by_name(result.output))
    assert lines[0]["soft"].endswith("1 of 3 soft bounces within 30d")
    assert lines[0]["copy"].startswith("already counted: soft bounce 4.2.2")
    assert lines[1]["soft"].endswith("2 of 3 soft bounces within 30d")
    assert lines[2]["soft"].endswith(": suppressed as bounced")
    engine = engine_for(config_of(cli))
    assert reason_for(engine, "reader001@example.org") == "bounced"
    assert [e[1] for e in events(cli)] == ["soft"] * 3


def test_soft_bounces_count_within_the_window_and_once_per_campaign(cli: Cli) -> None:
    import datetime as dt

    engine = engine_for(config_of(cli))
    rules = store.Rules(soft_limit=3, soft_window=dt.timedelta(days=30))
    day = dt.datetime(2026, 6, 1)

    def soft(key: str, days: int, email: str = "x@example.org") -> store.Recorded:
        event = store.NewEvent(
            email, BounceKind.SOFT, None, "4.2.2", "", "dsn", "report", key, day + dt.timedelta(days=days)
        )
        (done,) = store.record(engine, [event], rules)
        return done

    assert soft("a", 0).action == "1 of 3 soft bounces within 30d"
    assert soft("b", 40).action == "1 of 3 soft bounces within 30d"  # the first is out of the window
    assert soft("c", 55).action == "2 of 3 soft bounces within 30d"
    assert soft("d", 45).action == "suppressed as bounced"  # reported out of order: 40, 45 and 55 fit in 30 days
    assert reason_for(engine, "x@example.org") == "bounced"
    assert soft("d", 45).action == "already counted"


def test_a_crash_between_recording_and_moving_never_counts_twice(
    cli: Cli, folder: Path, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses, sent = send_list(cli, folder, smtp_server, 3)
    maildir = make_maildir(folder / "bounces")
    deliver(maildir, fill("gmail-bounce.eml", sent[addresses[0]]), "soft")
    deliver(maildir, fill("yahoo-arf.eml", sent[addresses[1]]), "arf")

    def crash(self: MaildirMailbox, refs: list[str]) -> None:
        raise MailboxError(f"{self.root}: cannot move processed messages there (simulated crash)")

    monkeypatch.setattr(MaildirMailbox, "done", crash)
    failed = cli("bounces", "fetch")
    assert failed.exit_code == 1 and "simulated crash" in failed.stderr
    assert len(list((maildir / "new").iterdir())) == 2  # still there: recorded, not moved
    recorded = events(cli)
    assert len(recorded) == 2
    monkeypatch.undo()
    again = cli("bounces", "fetch")
    assert again.exit_code == 0, again.output
    found = lines_by_name(again.output)
    assert found["soft"].startswith("already counted: soft bounce 4.2.2 reader000@example.org")
    assert found["soft"].endswith("already counted")
    assert found["arf"].startswith("already counted: complaint (abuse) reader001@example.org")
    assert events(cli) == recorded and list((maildir / "new").iterdir()) == []
    assert "1 of 3 soft bounces" in cli("subscribers", "show", addresses[0]).output


def test_receive_takes_one_message_on_stdin_for_an_mta_pipe(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    addresses, sent = send_list(cli, folder, smtp_server, 3)
    first = sent[addresses[0]]
    # The headers do not show the token (a relay rewrote them); the envelope recipient from the MTA does.
    plain = fill("postfix-dsn.eml", first, verp="bounces@example.com").decode()
    result = cli("bounces", "receive", "--recipient", first.verp, input=plain)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"stdin: hard bounce 5.1.1 {addresses[0]}, {TLS}: suppressed as bounced\n"
    again = cli("bounces", "receive", "--recipient", first.verp, input=plain)
    assert again.exit_code == 0 and again.stdout.startswith("stdin: already counted: hard bounce 5.1.1")
    # No envelope recipient: the report's fields and the returned Message-ID find the same delivery.
    second = fill("postfix-dsn.eml", sent[addresses[1]], verp="bounces@example.com").decode()
    second = second.replace("4Xk2Zp1r5Nz9vQx@", "4Xk2Zp1r5Nz9vQy@")
    result = cli("bounces", "receive", input=second)
    assert result.stdout == f"stdin: hard bounce 5.1.1 {addresses[1]}, {TLS}: suppressed as bounced\n"
    assert [e[2] for e in events(cli)] == ["token", "report + Message-ID"]
    # Hostile input is handled (exit 0: the MTA must not retry it), in one line.
    junk = cli("bounces", "receive", input="\x00\x01 not mail at all")
    assert junk.exit_code == 0 and junk.stdout.startswith("stdin: skipped: ") and junk.stdout.count("\n") == 1


def _nested(depth: int) -> bytes:
    head = (
        b"From: x@example.net\r\nMessage-ID: <bomb@example.net>\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    )
    return head + b"".join(
        b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1) for i in range(depth)
    )


def test_hostile_messages_are_skipped_in_one_line_each_and_never_stop_the_rest(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    addresses, sent = send_list(cli, folder, smtp_server, 3)
    maildir = make_maildir(folder / "bounces")
    wide = (
        b"From: x@example.net\r\nContent-Type: multipart/mixed; boundary=w\r\n\r\n"
        + (b"--w\r\nContent-Type: text/plain\r\n\r\nx\r\n" * 5000)
        + b"--w--\r\n"
    )
    never = fill("postfix-dsn.eml", rcpt="stranger@example.net", verp="bounces@example.com")
    evil = (
        fill("postfix-dsn.eml", sent[addresses[2]])
        .replace(
            b"rejected:\r\n    User unknown in virtual mailbox table",
            b"rejected:\r\n    User unknown \x1b[31mred\x07 \xff\xfe",
        )
        .replace(b"4Xk2Zp1r5Nz9vQx@", b"4XkEvl1r5Nz9vQx@")
    )
    huge = fill("postfix-dsn.eml", sent[addresses[1]]).replace(b"4Xk2Zp1r5Nz9vQx@", b"4XkBig1r5Nz9vQx@")
    huge = huge.replace(
        b"MIME-Version: 1.0\r\n\r\n--", b"MIME-Version: 1.0\r\n\r\n" + b"A" * 76 * 40_000 + b"\r\n\r\n--"
    )
    for name, data in [
        ("deep", _nested(3000)),
        ("wide", wide),
        ("binary", bytes(range(256)) * 40),
        ("empty", b""),
        ("never", never),
        ("forged", fill("forged-token.eml", sent[addresses[0]])),
        ("huge", huge),
        ("evil", evil),
        ("good", fill("postfix-dsn.eml", sent[addresses[0]])),
    ]:
        deliver(maildir, data, name)
    result = cli("bounces", "fetch")
    assert result.exit_code == 0, result.output
    found = lines_by_name(result.output)
    assert found["deep"].startswith("skipped: a MIME bomb: 3,001 body parts")
    assert found["wide"].startswith("skipped: a MIME bomb: 5,001 body parts")
    assert found["binary"].startswith("skipped: ") and found["empty"] == "skipped: empty message"
    assert found["never"] == "skipped: names stranger@example.net: an address we never mailed"
    assert found["forged"].startswith("skipped: a forged or stale VERP token")
    assert found["huge"] == f"hard bounce 5.1.1 {addresses[1]}, {TLS}: suppressed as bounced (read the first 1 MB only)"
    assert found["evil"].startswith(f"hard bounce 5.1.1 {addresses[2]}")
    assert found["good"] == f"hard bounce 5.1.1 {addresses[0]}, {TLS}: suppressed as bounced"
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", result.output)  # no terminal escapes, no stray CR
    assert len(result.output.splitlines()) == 10
    shown = cli("subscribers", "show", addresses[2]).output
    assert "User unknown [31mred \ufffd\ufffd" in shown and "\x1b" not in shown and "\x07" not in shown


def test_without_a_bounce_address_reports_are_matched_by_their_fields(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    cli.env["NEWSLETTER_NEWSLETTER_BASE_URL"] = "https://news.example.org"
    addresses, _ = send_list(cli, folder, smtp_server, 4)
    del cli.env["NEWSLETTER_BOUNCES_ADDRESS"]
    smtp_server.handler.received.clear()
    assert cli("send", "2026-11-16-password-managers", "--yes").exit_code == 0
    sent = sent_by_recipient(smtp_server.handler.received)
    assert {s.verp for s in sent.values()} == {SENDER_ADDRESS}
    maildir = make_maildir(folder / "bounces")
    # A DSN: the recipient from its fields, the campaign from the returned Message-ID.
    deliver(maildir, fill("postfix-dsn.eml", sent[addresses[0]]), "dsn")
    # A complaint with the recipient redacted and no token: the unsubscribe link in the reported headers.
    deliver(maildir, fill("yahoo-arf.eml", sent[addresses[1]]), "arf")
    # A DSN whose returned headers are gone: the recipient is known, the campaign is not.
    bare = Sent(addresses[2], SENDER_ADDRESS, "<gone@example.com>", "")
    deliver(maildir, fill("postfix-dsn.eml", bare).replace(b"4Xk2Zp1r5Nz9vQx@", b"4XkBar1r5Nz9vQx@"), "bare")
    result = cli("bounces", "fetch")
    assert result.exit_code == 0, result.output
    found = lines_by_name(result.output)
    assert found["dsn"] == f"hard bounce 5.1.1 {addresses[0]}, 2026-11-16-password-managers: suppressed as bounced"
    assert found["arf"] == f"complaint (abuse) {addresses[1]}, 2026-11-16-password-managers: suppressed as complained"
    assert found["bare"] == f"hard bounce 5.1.1 {addresses[2]}, campaign unknown: suppressed as bounced"
    assert [e[2] for e in events(cli)] == ["report + Message-ID", "unsubscribe link", "report"]


def test_bounce_settings_and_mailbox_errors_are_one_line(cli: Cli, folder: Path) -> None:
    config = folder / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    cases = [
        ('[bounces]\naddress = "not-an-address"\n', "[bounces] address: 'not-an-address' is not a plain address"),
        ('[bounces]\naddress = "' + "b" * 40 + '@example.com"\n', "leaves no room for the 28-character token"),
        ('[bounces]\nimap_host = "imap.example.com"\nimap_user = "b"\nmaildir = "m"\n', "are both set"),
        ('[bounces]\nimap_host = "imap.example.com"\n', "[bounces] imap_user: empty but imap_host is set"),
        (
            '[bounces]\npassword = "hunter2"\n',
            "secrets are not read from files; remove it and set NEWSLETTER_BOUNCES_PASSWORD",
        ),
        ("[bounces]\nsoft_limit = 0\n", "[bounces] soft_limit: must be at least 1"),
        ('[bounces]\ninterval = "often"\n', "[bounces] interval: 'often' is not a duration"),
    ]
    for section, message in cases:
        config.write_text(text + section, encoding="utf-8")
        result = cli("bounces", "fetch")
        assert result.exit_code == 2 and message in result.stderr, (section, result.stderr)
        assert result.stderr.startswith("newsletter: error: ") and result.stderr.count("\n") == 1
    config.write_text(text, encoding="utf-8")
    none = cli("bounces", "fetch")
    assert none.exit_code == 1 and "no bounce mailbox is configured" in none.stderr
    cli.env["NEWSLETTER_BOUNCES_MAILDIR"] = "missing"
    assert (
        "missing: not a Maildir (no new/ and cur/ folders); check [bounces] maildir" in cli("bounces", "fetch").stderr
    )
    cli.env.update(
        {
            "NEWSLETTER_BOUNCES_MAILDIR": "",
            "NEWSLETTER_BOUNCES_IMAP_HOST": "127.0.0.1",
            "NEWSLETTER_BOUNCES_IMAP_USER": "b",
        }
    )
    nopass = cli("bounces", "fetch")
    assert nopass.exit_code == 1 and "NEWSLETTER_BOUNCES_PASSWORD is not set" in nopass.stderr


def test_hard_soft_and_complaint_classification_by_status_code() -> None:
    from newsletter.bounces.report import kind_of, status_in

    hard, soft = BounceKind.HARD, BounceKind.SOFT
    table = {
        "5.1.1": hard,
        "5.1.10": hard,
        "5.4.4": hard,
        "5.2.1": hard,
        "5.2.2": soft,
        "5.7.1": soft,
        "4.2.2": soft,
        "4.4.7": soft,
    }
    assert {code: kind_of(code, hard) for code in table} == table
    assert kind_of("", soft) == soft and kind_of("2.0.0", hard) == hard
    assert status_in("smtp; 550-5.1.1 The email account does not exist") == "5.1.1"
    assert status_in("said: 554 delivery error") == "5.0.0" and status_in("all good 250") == ""


def test_verp_tokens_stay_short_and_refuse_tampering() -> None:
    verp = Verp("bounces@example.com", SECRET)
    longest = verp.list_sender(16**6 - 1, 16**8 - 1, "a.very.long.address+tag@subdomain.example.org")
    local = longest.partition("@")[0]
    assert len(local) == len("bounces+") + 28 and re.fullmatch(r"bounces\+[0-9a-f-]+", local)
    token_text = verp.token_in(longest.upper())  # an MTA that upper-cases the local part
    assert token_text is not None
    token = verp.parse(token_text)
    assert token is not None and verp.verify(token, "A.Very.Long.Address+tag@subdomain.example.org")
    other = Verp("bounces@example.com", SECRET + "x")
    assert not other.verify(token, "a.very.long.address+tag@subdomain.example.org")  # another secret
    for bad in ("", "1-2", "1-2-3-4", "x-1-aaaaaaaaaaaa", "1-1-aaaaaaaaaaa", "1-1-aaaaaaaaaaag", "1-" + "1" * 40):
        assert verp.parse(bad) is None, bad
    assert verp.token_in("bounces@example.com") is None and verp.token_in("other+1-1-a@example.com") is None
    assert verp.token_in("bounces+1-1-aaaaaaaaaaaa@elsewhere.example") is None


def test_bounces_of_test_sends_count_only_for_subscribers(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    addresses, _sent = send_list(cli, folder, smtp_server, 2)
    smtp_server.handler.received.clear()
    result = cli("send-test", TLS, "--to", addresses[0], "--to", "editor@example.net")
    assert result.exit_code == 0, result.output
    tests = sent_by_recipient(smtp_server.handler.received)
    maildir = make_maildir(folder / "bounces")
    deliver(maildir, fill("postfix-dsn.eml", tests[addresses[0]]), "subscriber")
    stranger = fill("postfix-dsn.eml", tests["editor@example.net"]).replace(b"4Xk2Zp1r5Nz9vQx@", b"4XkEdt1r5Nz9vQx@")
    deliver(maildir, stranger, "stranger")
    # A test send's token signs its address: a report naming another address does not verify.
    other = fill("postfix-dsn.eml", tests["editor@example.net"], rcpt=addresses[1])
    deliver(maildir, other.replace(b"4Xk2Zp1r5Nz9vQx@", b"4XkOth1r5Nz9vQx@"), "other")
    found = lines_by_name(cli("bounces", "fetch").output)
    assert found["subscriber"] == f"hard bounce 5.1.1 {addresses[0]}, a test send: suppressed as bounced"
    assert found["stranger"] == (
        "ignored: a bounce of a test send to editor@example.net, who is not a subscriber: left alone"
    )
    assert found["other"].startswith("skipped: a forged VERP token in bounces+0-")
    shown = cli("subscribers", "show", addresses[0]).output
    assert "hard bounce 5.1.1  a test send  (dsn): suppressed as bounced" in shown


def test_the_state_database_failing_stops_the_run_and_moves_nothing(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    addresses, sent = send_list(cli, folder, smtp_server, 2)
    maildir = make_maildir(folder / "bounces")
    deliver(maildir, fill("out-of-office.eml", sent[addresses[1]]), "ooo")
    deliver(maildir, fill("postfix-dsn.eml", sent[addresses[0]]), "dsn")
    with engine_for(config_of(cli)).begin() as conn:
        conn.exec_driver_sql("DROP TABLE deliveries")  # the token lookup now fails
    result = cli("bounces", "fetch")
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("newsletter: error: the state database failed (")
    assert result.stderr.endswith("nothing more was recorded or moved\n") and result.stderr.count("\n") == 1
    assert len(list((maildir / "new").iterdir())) == 2  # the auto-reply too: its batch never committed
