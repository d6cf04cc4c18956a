"""The subscriber list: validation (one test per kind of bad row), the commands, personalization.

Every check goes through the real CLI on a real CSV file and the real SQLite state; the
personalization test sends through a real aiosmtpd server.
"""

from __future__ import annotations

import email
import email.policy
import os
from email.utils import getaddresses
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email

from newsletter.config import load_config
from newsletter.content.addresses import AddressChecker
from newsletter.content.subscribers import ListReport, iter_subscribers
from newsletter.state.engine import engine_for
from newsletter.state.suppressions import reason_for, suppress, suppressed_addresses

from .helpers import Cli, wipe_state
from .smtpd import SmtpServer

pytestmark = pytest.mark.usefixtures("database")

HEADER = "email,name,status,subscribed_at,city\n"
GOOD = "ada@example.com,Ada Lovelace,active,2026-01-05,London\n"
TLS = "2026-11-09-tls-certificates"


def write_csv(cli: Cli, data: bytes | str) -> Path:
    path = cli.folder / "subscribers.csv"
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "subscribers.csv"
    return path


def check(cli: Cli, data: bytes | str) -> tuple[int, list[str]]:
    write_csv(cli, data)
    result = cli("subscribers", "check")
    return result.exit_code, result.stdout.splitlines()


# --- one test per kind of bad row ------------------------------------------------------------


def test_valid_list_passes(cli: Cli) -> None:
    code, out = check(cli, HEADER + GOOD + "grace@example.org,Grace,,2026-02-11,\n")
    assert code == 0
    assert out == ["subscribers.csv: 2 rows; 2 valid (2 active); 0 invalid; 0 errors, 0 warnings"]


def test_bad_address_syntax(cli: Cli) -> None:
    code, out = check(cli, HEADER + GOOD + "grace@,Grace,,,\nalan at example.com,Alan,,,\n")
    assert code == 1
    assert out[0].startswith("subscribers.csv:3: 'grace@' is not a valid email address (There must be something")
    assert out[0].endswith("; correct or delete the row")
    assert out[1].startswith("subscribers.csv:4: 'alan at example.com' is not a valid email address")
    assert "3 rows; 1 valid (1 active); 2 invalid; 2 errors" in out[-1]


def test_duplicate_ignoring_case_keeps_the_first(cli: Cli) -> None:
    code, out = check(cli, HEADER + GOOD + "x@example.com,X,,,\nADA@Example.COM,Impostor,,,\n")
    assert code == 1
    assert out[0] == "subscribers.csv:4: ADA@example.com is a duplicate of line 2 (case is ignored); delete this row"
    names = [s.name for s in iter_subscribers(cli.folder / "subscribers.csv")]
    assert names == ["Ada Lovelace", "X"]


def test_a_name_too_long_for_a_header_is_refused_at_import(cli: Cli) -> None:
    code, out = check(cli, HEADER + GOOD + f"long@example.com,{'Ä' * 400},,,\nok@example.com,{'B' * 200},,,\n")
    assert code == 1
    assert out[0] == "subscribers.csv:3: name is 400 characters; shorten it to at most 200"
    assert "3 rows; 2 valid (2 active); 1 invalid" in out[-1]


def test_empty_email(cli: Cli) -> None:
    code, out = check(cli, HEADER + GOOD + ",Nobody,active,,\n")
    assert code == 1
    assert out[0] == "subscribers.csv:3: the email field is empty; fill it in or delete the row"


def test_extra_fields(cli: Cli) -> None:
    code, out = check(cli, HEADER + GOOD + "bob@example.com,Smith, Bob,active,2026-01-01,Paris\n")
    assert code == 1
    assert out[0].startswith("subscribers.csv:3: 6 fields, the header has 5 (extra: 'Paris'); put values containing")


def test_missing_trailing_fields_is_a_warning_only(cli: Cli) -> None:
    code, out = check(cli, HEADER + GOOD + "bob@example.com,Bob\n")
    assert code == 0
    assert out[0] == "subscribers.csv:3: warning: 2 fields, the header has 5; the missing ones were taken as empty"


def test_bom_is_reported_and_the_header_still_read(cli: Cli) -> None:
    code, out = check(cli, b"\xef\xbb\xbf" + (HEADER + GOOD).encode())
    assert code == 0
    assert out[0].startswith("subscribers.csv:1: warning: the file starts with a byte-order mark (BOM)")
    assert [s.email for s in iter_subscribers(cli.folder / "subscribers.csv")] == ["ada@example.com"]


def test_utf16_file_is_refused_with_a_fix(cli: Cli) -> None:
    write_csv(cli, (HEADER + GOOD).encode("utf-16"))
    result = cli("subscribers", "check")
    assert result.exit_code == 2
    assert "subscribers.csv:1: the file is UTF-16; save it as UTF-8" in result.stderr


def test_non_utf8_bytes_mark_their_row_only(cli: Cli) -> None:
    code, out = check(cli, (HEADER + GOOD).encode() + b"renee@example.net,Ren\xe9e,,,\ngrace@example.org,Grace,,,\n")
    assert code == 1
    assert out[0] == "subscribers.csv:3: not UTF-8 text (bytes 0xE9); save the file as UTF-8 (in Excel: 'CSV UTF-8')"
    assert "3 rows; 2 valid" in out[-1]


def test_cr_lf_in_name_is_an_invalid_row_not_a_crash(cli: Cli) -> None:
    code, out = check(cli, HEADER + 'eve@example.com,"Eve\r\nBcc: victim@example.com",,,\n' + GOOD)
    assert code == 1
    assert out[0] == (
        "subscribers.csv:2: name contains a line break (CR/LF), which cannot go into a mail header; remove it"
    )
    # The quoted line break spans two physical lines; the next row's number is still right.
    write_csv(cli, HEADER + 'eve@example.com,"Eve\r\nX",,,\nbad@,B,,,\n')
    assert cli("subscribers", "check").output.splitlines()[1].startswith("subscribers.csv:4: 'bad@'")


def test_unknown_status(cli: Cli) -> None:
    code, out = check(cli, HEADER + GOOD + "x@example.com,X,actve,,\n")
    assert code == 1
    assert out[0] == (
        "subscribers.csv:3: status 'actve' is not one of active, unsubscribed, bounced, complained "
        "(empty means active); correct it"
    )


def test_header_without_email_column(cli: Cli) -> None:
    write_csv(cli, "mail,name\nada@example.com,Ada\n")
    result = cli("subscribers", "check")
    assert result.exit_code == 2
    assert "subscribers.csv:1: no 'email' column in the header" in result.stderr


def test_report_for_the_send_path_names_the_lines(cli: Cli) -> None:
    path = write_csv(cli, HEADER + GOOD + "bad@,B,,,\n" + "c@example.com,C,bounced,,\n" + ",,,,\n")
    report = ListReport(path)
    assert [s.email for s in iter_subscribers(path, report=report)] == ["ada@example.com"]
    assert report.skipped_message() == (
        f"skipped 2 invalid rows of {path}: lines 3, 5 (details: newsletter subscribers check)"
    )
    assert report.statuses == {"active": 1, "bounced": 1}


def test_address_checker_agrees_with_email_validator() -> None:
    """The cached-domain fast path must accept and reject exactly what email-validator does."""
    checker = AddressChecker()
    samples = [
        "ada@example.com", "Ada.Lovelace+news@Example.COM", "a@b", "a@localhost", "a@example.test",
        "a..b@example.com", ".a@example.com", "a.@example.com", "a b@example.com", '"a b"@example.com',
        "ä@example.com", "a@ü.de", "a@xn--tda.de", "a@-example.com", "a@example-.com", "a@123.com", "a@1.2.3.4",
        "x" * 64 + "@example.com", "x" * 65 + "@example.com", "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com",
        "a@" + ".".join(["b" * 60] * 4) + ".com", "o'brien@example.ie", "a@example..com", "a@example.com.",
    ]  # fmt: skip
    for address in samples * 2:  # twice: the second time from the domain cache
        try:
            expected: str | None = validate_email(address, check_deliverability=False, allow_smtputf8=False)
            expected = expected.ascii_email or expected.normalized  # type: ignore[union-attr]
        except EmailNotValidError:
            expected = None
        try:
            got: str | None = checker.check(address)
        except EmailNotValidError:
            got = None
        assert got == expected, address


# --- commands and the suppression list -------------------------------------------------------


def test_unsubscribe_resubscribe_list_stats_export(cli: Cli) -> None:
    write_csv(
        cli,
        HEADER + GOOD + "grace@example.org,Grace,,2026-02-11,\n" + "c@example.com,C,bounced,,\n" + "bad@,B,,,\n",
    )
    result = cli("subscribers", "unsubscribe", "Grace@Example.org")
    assert result.exit_code == 0
    assert result.stdout == "Grace@example.org: suppressed (unsubscribed); on the list since 2026-02-11 (csv)\n"
    assert "skipped 1 invalid row of subscribers.csv: line 5" in result.stderr  # the CSV is synced first
    assert "already suppressed" in cli("subscribers", "unsubscribe", "grace@example.org").output
    assert cli("subscribers", "unsubscribe", "stranger@example.com", "--reason", "complained").exit_code == 0
    listed = cli("subscribers", "list").stdout.splitlines()
    assert listed == [
        "ada@example.com\tAda Lovelace\tactive\tcsv\t\tcsv 2026-01-05 00:00 UTC (subscribers.csv line 2)",
        "grace@example.org\tGrace\tunsubscribed\tcsv\t\tcsv 2026-02-11 00:00 UTC (subscribers.csv line 3)",
        listed[2],
    ]
    assert listed[2].startswith("c@example.com\tC\tbounced\tcsv\t\tcsv ")  # no subscribed_at: the first sync
    assert cli("subscribers", "list", "--status", "active").stdout.splitlines() == [listed[0]]
    stats = cli("subscribers", "stats").output
    assert "active                1" in stats and "unsubscribed          1" in stats and "bounced               1" in stats
    assert "by source: csv 3, import 0, signup 0, operator 0" in stats
    assert "suppression list: 2 addresses" in stats and "complained            1" in stats
    # Export: the effective status, source, tags and consent record, mode 0600 (personal data).
    out = cli.folder / "export.csv"
    exported = cli("subscribers", "export", "--out", str(out))
    assert exported.exit_code == 0 and "wrote 3 subscribers to" in exported.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == [
        "email,name,first_name,status,source,tags,subscribed_at,confirmed_at,consent,city",
        "ada@example.com,Ada Lovelace,Ada,active,csv,,2026-01-05T00:00:00Z,,csv: subscribers.csv line 2,London",
        "grace@example.org,Grace,Grace,unsubscribed,csv,,2026-02-11T00:00:00Z,,csv: subscribers.csv line 3,",
    ]
    assert cli("subscribers", "export").stdout == out.read_text(encoding="utf-8")
    # Importing the export into a fresh database cannot bring Grace back: she comes in suppressed.
    wipe_state(cli)
    imported = cli("subscribers", "import", "export.csv")
    assert imported.exit_code == 0 and "export.csv (csv): 1 added, 0 updated, 2 suppressed, 0 skipped" in imported.stdout
    config = load_config(cli.folder / "newsletter.toml", env={**os.environ, **cli.env})
    assert reason_for(engine_for(config), "grace@example.org") == "unsubscribed"
    # Never over the list itself: an export is not the file's own rows (source, consent, every address).
    before = (cli.folder / "subscribers.csv").read_bytes()
    over = cli("subscribers", "export", "--out", "subscribers.csv")
    assert over.exit_code == 2 and "is the list itself ([paths] subscribers)" in over.stderr
    assert (cli.folder / "subscribers.csv").read_bytes() == before
    # Resubscribe removes the suppression and says what still stands in the way.
    assert cli("subscribers", "unsubscribe", "ada@example.com").exit_code == 0
    back = cli("subscribers", "resubscribe", "ADA@example.com")
    assert back.exit_code == 0 and "removed from the suppression list" in back.output
    assert "not suppressed" in cli("subscribers", "resubscribe", "ada@example.com").output
    warned = cli("subscribers", "resubscribe", "c@example.com")
    assert "subscribers.csv:4: the status is still 'bounced'; set it to active" in warned.stderr
    nowhere = cli("subscribers", "resubscribe", "stranger@example.com")
    assert "stranger@example.com is not on the list; add it with `newsletter subscribers add" in nowhere.stderr


def test_bad_address_on_the_command_line(cli: Cli) -> None:
    result = cli("subscribers", "unsubscribe", "not-an-address")
    assert result.exit_code == 2
    assert result.stderr.startswith("newsletter: error: EMAIL: 'not-an-address' is not a valid email address")


def test_recipients_exclude_the_suppression_list(cli: Cli) -> None:
    write_csv(cli, HEADER + GOOD + "grace@example.org,Grace,,,\nu@example.com,U,unsubscribed,,\n")
    config = load_config(cli.folder / "newsletter.toml", env={**os.environ, **cli.env})
    suppress(engine_for(config), "GRACE@example.org", "bounced")
    report = ListReport(config.path("subscribers"))
    suppressed = suppressed_addresses(engine_for(config))
    assert [s.email for s in iter_subscribers(config.path("subscribers"), report=report, suppressed=suppressed)] == [
        "ada@example.com"
    ]
    assert report.suppressed == 1 and reason_for(engine_for(config), "grace@example.org") == "bounced"


# --- personalization -------------------------------------------------------------------------


def test_hostile_and_non_ascii_names_are_escaped_in_html_and_safe_in_headers(cli: Cli, smtp_server: SmtpServer) -> None:
    write_csv(
        cli,
        HEADER
        + '"x@example.com","<script>alert(\'x\')</script> ""Quoted"" O\'Brien",,,\n'
        + "renee@example.net,Renée Ça Va Ωμέγα,,,Montréal\n"
        + 'eve@example.com,"Eve\r\nBcc: victim@example.com",,,\n'
        + "noname@example.com,,,,\n",
    )
    cli.env.update({**smtp_server.env(), "NEWSLETTER_SMTP_RETRY_BASE_DELAY": "0.01"})
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    by_address = {r.rcpt_tos[0]: r for r in smtp_server.handler.received}
    assert sorted(by_address) == ["noname@example.com", "renee@example.net", "x@example.com"]  # not eve

    hostile = by_address["x@example.com"]
    html = hostile.message.get_body(("html",)).get_content()
    assert "<script>" not in html
    assert "Hi &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;," in html  # the first word of the name, escaped
    ((display, address),) = getaddresses([hostile.message["To"]])
    assert (display, address) == ("<script>alert('x')</script> \"Quoted\" O'Brien", "x@example.com")

    renee = by_address["renee@example.net"]
    raw_to = next(line for line in renee.data.split(b"\r\n") if line.startswith(b"To:"))
    assert raw_to.isascii() and b"=?utf-8?" in raw_to.lower()  # RFC 2047
    assert str(renee.message["To"]) == "Renée Ça Va Ωμέγα <renee@example.net>"
    assert "Hi Renée," in renee.message.get_body(("html",)).get_content()
    assert "Hi Renée," in renee.message.get_body(("plain",)).get_content()

    noname = by_address["noname@example.com"]
    assert noname.message["To"] == "noname@example.com"
    assert "Hi there," in noname.message.get_body(("plain",)).get_content()
    for received in smtp_server.handler.received:
        parsed = email.message_from_bytes(received.data, policy=email.policy.strict)
        assert "Bcc" not in parsed and parsed.defects == []
