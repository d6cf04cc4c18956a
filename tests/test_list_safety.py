"""A list that cannot be read right is never sent to, and no subscriber is lost on the way.

Through the real CLI on SQLite and PostgreSQL: a stray quote that would swallow every row after
it, a list far smaller than the campaign it resumes (a header-only file), a list much smaller than
the last campaign's, too many invalid rows, and `subscribers export --out` pointed at the list.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import pytest

from newsletter.state.engine import engine_for
from newsletter.state.subscribers import count_by, find

from .helpers import FAST, TLS, Cli, config_of, counts, write_list
from .smtpd import RecordingHandler, SmtpServer

pytestmark = pytest.mark.usefixtures("database")
PASSWORDS = "2026-11-16-password-managers"


def stray_quote(folder: Path, line: int) -> str:
    """Put an opening quote (never closed) into the name on `line`; returns the file's good text."""
    path = folder / "subscribers.csv"
    good = path.read_text(encoding="utf-8")
    lines = good.splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace(",Reader", ',"Reader', 1)
    path.write_text("".join(lines), encoding="utf-8")
    return good


def test_a_stray_quote_refuses_the_list_with_its_line_and_loses_nobody(cli: Cli, folder: Path) -> None:
    addresses = write_list(folder, 200, cli)
    assert cli("subscribers", "import").exit_code == 0  # the list is in the database
    good = stray_quote(folder, 11)
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("newsletter: error: ") and "subscribers.csv:11: " in line
    assert "quote" in line and "190 lines" in line
    assert "no campaign" in cli("status").output
    engine = engine_for(config_of(cli))
    assert count_by(engine, "effective") == {"active": 200}  # nothing was removed from the list
    check = cli("subscribers", "check")
    assert check.exit_code == 1 and "subscribers.csv:11: " in check.stdout
    (folder / "subscribers.csv").write_text(good, encoding="utf-8")
    fixed = cli("send", TLS, "--yes")
    assert fixed.exit_code == 0, fixed.output + fixed.stderr
    assert len(list((folder / "outbox" / TLS).glob("*.eml"))) == len(addresses)


def test_a_quoted_value_with_a_line_break_is_still_one_field(cli: Cli, folder: Path) -> None:
    """A real multi-line value (an address column) is not a stray quote: it swallows no row."""
    (folder / "subscribers.csv").write_text(
        'email,name,postal\nada@example.com,Ada,"1 Main St\nLondon"\ngrace@example.org,Grace,x\n', encoding="utf-8"
    )
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "subscribers.csv"
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    assert "sent 2," in result.output


def test_a_resume_against_a_header_only_list_is_refused_until_the_list_is_back(cli: Cli, folder: Path) -> None:
    addresses = write_list(folder, 60, cli)
    taken: list[str] = []

    def first_25(address: str) -> str | None:
        if len(taken) >= 25:
            return "451 4.3.0 later"
        taken.append(address)
        return None

    handler = RecordingHandler(rcpt_reply=first_25)
    with SmtpServer(handler) as server:
        cli.env.update({**server.env(), **FAST, "NEWSLETTER_SMTP_MAX_ATTEMPTS": "1"})
        first = cli("send", TLS, "--yes")  # 25 sent, the rest deferred: the campaign goes on later
        assert "sending" in cli("status", TLS).output, first.output + first.stderr
        assert cli("subscribers", "add", "extra@example.com").exit_code == 0
        good = (folder / "subscribers.csv").read_text(encoding="utf-8")
        (folder / "subscribers.csv").write_text("email,name,status,city\n", encoding="utf-8")  # being rewritten
        handler.rcpt_reply = None
        result = cli("send", TLS, "--yes")
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.splitlines()
        assert "60 of the 60 subscribers it brought in are not in the file" in line and "--allow-shrink" in line
        assert len(handler.received) == 25 and "sending" in cli("status", TLS).output
        assert find(engine_for(config_of(cli)), addresses[59]) is not None  # still on the list
        (folder / "subscribers.csv").write_text(good, encoding="utf-8")
        resumed = cli("send", TLS, "--yes")
        assert resumed.exit_code == 0, resumed.output + resumed.stderr
    assert Counter(handler.recipients()) == Counter([*addresses, "extra@example.com"])


def test_a_list_much_smaller_than_the_last_campaigns_needs_allow_shrink(cli: Cli, folder: Path) -> None:
    addresses = write_list(folder, 50, cli)
    assert cli("send", TLS, "--yes").exit_code == 0
    write_list(folder, 20)  # 30 rows taken out of the file
    refused = cli("send", PASSWORDS, "--yes")
    assert refused.exit_code == 2
    assert "30 of the 50 subscribers it brought in are not in the file" in refused.stderr
    assert "no campaign" in cli("status", PASSWORDS).output
    asked = cli("send", PASSWORDS, input="n\n")  # without --yes: it says so and asks
    assert asked.exit_code == 1 and "30 of the 50 subscribers" in asked.output
    sent = cli("send", PASSWORDS, "--yes", "--allow-shrink")
    assert sent.exit_code == 0, sent.output + sent.stderr
    assert "sent 20," in sent.output
    assert find(engine_for(config_of(cli)), addresses[30]) is None  # confirmed: they left the list


def test_the_audience_shrinking_against_the_last_campaign_is_refused_too(cli: Cli, folder: Path) -> None:
    """Not only the file: 40 of 50 suppressed since the last campaign (a bounce import gone wrong, say)."""
    from newsletter.state.suppressions import suppress

    addresses = write_list(folder, 50, cli)
    assert cli("send", TLS, "--yes").exit_code == 0
    engine = engine_for(config_of(cli))
    for address in addresses[:40]:
        suppress(engine, address, "bounced", "a bad import")
    refused = cli("send", PASSWORDS, "--yes")
    assert refused.exit_code == 2
    assert "10 recipients, 80% fewer than the 50 of the last campaign" in refused.stderr
    assert cli("send", PASSWORDS, "--yes", "--allow-shrink").exit_code == 0


def test_a_list_with_many_invalid_rows_is_refused(cli: Cli, folder: Path) -> None:
    write_list(folder, 90, cli)
    with (folder / "subscribers.csv").open("a", encoding="utf-8") as fh:
        for i in range(10):
            fh.write(f"broken{i}.example.org,Broken,active,X\n")
    refused = cli("send", TLS, "--yes")
    assert refused.exit_code == 2
    assert "10 of the 100 rows of" in refused.stderr and "subscribers check" in refused.stderr
    assert "no campaign" in cli("status").output
    assert cli("send", TLS, "--yes", "--allow-shrink").exit_code == 0


def test_export_never_writes_over_the_list_and_keeps_every_column(cli: Cli, folder: Path) -> None:
    write_list(folder, 5, cli)
    before = (folder / "subscribers.csv").read_bytes()
    refused = cli("subscribers", "export", "--out", "subscribers.csv")
    assert refused.exit_code == 2
    assert "is the list itself ([paths] subscribers)" in refused.stderr
    assert (folder / "subscribers.csv").read_bytes() == before
    again = cli("subscribers", "export", "--out", str(folder / "." / "subscribers.csv"))
    assert again.exit_code == 2 and (folder / "subscribers.csv").read_bytes() == before
    out = cli("subscribers", "export", "--out", "export.csv")
    assert out.exit_code == 0, out.output + out.stderr
    exported = (folder / "export.csv").read_text(encoding="utf-8").splitlines()
    assert exported[0].split(",")[:9] == [
        "email", "name", "first_name", "status", "source", "tags", "subscribed_at", "confirmed_at", "consent",
    ]
    assert "city" in exported[0].split(",") and "Town4" in exported[-1]
    assert stat.S_IMODE(os.stat(folder / "export.csv").st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir() if "export" in p.name) == ["export.csv"]  # no temporary left


def test_a_streamed_list_found_wrong_once_read_stops_the_send_there_and_the_fix_sends_the_rest(
    cli: Cli, folder: Path
) -> None:
    """A list that streams into the send is checked whole once read: a stray quote near its end stops the
    sender where it is, nobody is removed, and the run after the fix sends the rest, nobody twice."""
    addresses = write_list(folder, 5_000, cli)
    cli.env["NEWSLETTER_DELIVERY_STREAM_FROM"] = "100"
    assert cli("subscribers", "import").exit_code == 0
    good = stray_quote(folder, 4_501)
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 2, result.output
    line = result.stderr.splitlines()[-1]  # after the progress lines
    assert line.startswith("newsletter: error: ") and "subscribers.csv:4501: " in line
    assert "nobody was removed" in line and "the send stopped there, after" in line
    sent_first = counts(cli).get("sent", 0)
    assert sent_first < len(addresses) and "sending" in cli("status", TLS).output
    assert count_by(engine_for(config_of(cli)), "effective") == {"active": 5_000}
    (folder / "subscribers.csv").write_text(good, encoding="utf-8")
    fixed = cli("send", TLS, "--yes")
    assert fixed.exit_code == 0, fixed.output + fixed.stderr
    assert counts(cli) == {"sent": len(addresses)}
    assert len(list((folder / "outbox" / TLS).glob("*.eml"))) == len(addresses)


def test_a_streamed_list_cut_short_is_refused_before_anything_is_sent(cli: Cli, folder: Path) -> None:
    write_list(folder, 500, cli)
    cli.env["NEWSLETTER_DELIVERY_STREAM_FROM"] = "10"
    assert cli("send", TLS, "--yes").exit_code == 0
    write_list(folder, 100)  # the file cut short: its line count alone says so
    refused = cli("send", PASSWORDS, "--yes")
    assert refused.exit_code == 2, refused.output
    assert "at most 100 recipients (100 lines in the file), 80% fewer than the 500 of the last campaign" in refused.stderr
    assert "no campaign" in cli("status", PASSWORDS).output
    assert count_by(engine_for(config_of(cli)), "effective") == {"active": 500}  # nobody removed
