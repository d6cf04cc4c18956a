"""Where the list lives: the CSV synced into the database, the operator's commands, erasure, and who wins.

Through the real CLI on SQLite and PostgreSQL; sends go to the outbox, whose files say who got what.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.state.engine import engine_for
from newsletter.state.schema import deliveries, subscribers
from newsletter.state.signups import confirm, record_pending
from newsletter.state.subscribers import find
from newsletter.state.suppressions import reason_for, suppress

from .helpers import TLS, Cli, config_of

pytestmark = pytest.mark.usefixtures("database")
PASSWORDS = "2026-11-16-password-managers"


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def write_csv(cli: Cli, text: str) -> None:
    (cli.folder / "subscribers.csv").write_text(text, encoding="utf-8")
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "subscribers.csv"


def outbox(folder: Path, key: str) -> list[str]:
    return sorted(p.name.rsplit("-", 1)[0] for p in (folder / "outbox" / key).glob("*.eml"))


def send(cli: Cli, *args: str) -> str:
    result = cli("send", *args, "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    return result.output + result.stderr


def test_a_row_removed_from_the_csv_is_no_longer_mailed_but_a_signup_stays(cli: Cli, folder: Path) -> None:
    write_csv(cli, "email,name\nada@example.com,Ada\ngrace@example.org,Grace\nrenee@example.net,Renée\n")
    engine = engine_for(config_of(cli))
    # Renée also signed up on the form (her own consent): the CSV sync must never remove her.
    cli("subscribers", "import")
    confirm(engine, "renee@example.net", "Renée", "Renée", utc("2026-11-01 10:00"), "hash")
    record_pending(engine, "someone@example.com", "", "", "hash")
    send(cli, TLS)
    assert outbox(folder, TLS) == ["ada@example.com", "grace@example.org", "renee@example.net"]
    write_csv(cli, "email,name\nada@example.com,Ada Lovelace\n")  # Grace and Renée taken out of the file
    out = send(cli, PASSWORDS)
    assert outbox(folder, PASSWORDS) == ["ada@example.com", "renee@example.net"]
    assert "sent 2," in out
    assert find(engine, "grace@example.org") is None  # her row went with the file's
    renee = find(engine, "renee@example.net")
    assert renee is not None and renee.source == "signup" and renee.effective == "active"
    ada = find(engine, "ada@example.com")
    assert ada is not None and ada.name == "Ada Lovelace" and ada.first_name == "Ada"  # a changed row is updated
    assert find(engine, "someone@example.com") is not None  # a pending signup is not the CSV's either
    # A missing file changes nothing (a typo in [paths] must not empty the list).
    (cli.folder / "subscribers.csv").unlink()
    synced = cli("subscribers", "import")
    assert synced.exit_code == 0 and "subscribers.csv not found: nothing synced; the 1 subscribers" in synced.stdout
    assert find(engine, "ada@example.com") is not None


def test_the_suppression_list_wins_over_the_csv(cli: Cli, folder: Path) -> None:
    write_csv(cli, "email,name,status\nada@example.com,Ada,active\ngrace@example.org,Grace,\nalan@example.com,Alan,\n")
    engine = engine_for(config_of(cli))
    suppress(engine, "GRACE@example.org", "unsubscribed", "one-click")
    suppress(engine, "alan@example.com", "bounced", "550 5.1.1")
    out = send(cli, TLS)
    assert outbox(folder, TLS) == ["ada@example.com"]
    assert "skipped 2" in out
    listed = cli("subscribers", "list").stdout
    assert "grace@example.org\tGrace\tunsubscribed\tcsv" in listed and "alan@example.com\tAlan\tbounced\tcsv" in listed


def test_erasure_deletes_the_personal_data_and_nothing_brings_the_address_back(cli: Cli, folder: Path) -> None:
    write_csv(cli, "email,name,city\nada@example.com,Ada,London\ngrace@example.org,Grace,Arlington\n")
    send(cli, TLS)
    engine = engine_for(config_of(cli))
    suppress(engine, "grace@example.org", "complained")
    erased = cli("subscribers", "remove", "Grace@example.org")
    assert erased.exit_code == 0
    assert erased.stdout == (
        "Grace@example.org: erased (personal data deleted; a one-way hash is kept so no import or CSV brings it back)\n"
    )
    assert "if subscribers.csv lists Grace@example.org, delete that row too" in erased.stderr
    with engine.connect() as conn:
        stored = " ".join(
            str(v) for table in (subscribers, deliveries) for row in conn.execute(select(table)) for v in row
        )
    assert "grace" not in stored.lower() and "Arlington" not in stored
    assert reason_for(engine, "grace@example.org") is None  # the suppression in clear went too
    # The row is still in the file: the sync leaves it out, says so, and the next issue does not reach her.
    listed = cli("subscribers", "list")
    assert "grace" not in listed.stdout
    synced = cli("subscribers", "import")
    assert "subscribers.csv:3: warning: grace@example.org was erased (subscribers remove)" in synced.stdout
    send(cli, PASSWORDS)
    assert outbox(folder, PASSWORDS) == ["ada@example.com"]
    refused = cli("subscribers", "add", "grace@example.org")
    assert refused.exit_code == 2 and "is erased (subscribers remove); it is not added back" in refused.stderr
    # Her own new consent (a confirmed signup) brings her back.
    confirm(engine, "grace@example.org", "Grace", "Grace", utc("2026-12-01 10:00"), "hash")
    assert cli("subscribers", "list", "--status", "active").stdout.count("grace@example.org") == 1


def test_add_tag_untag_and_the_consent_record(cli: Cli) -> None:
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "none.csv"
    added = cli("subscribers", "add", "Zoe@Example.com", "--name", "Dr. Zoë Øster", "--tag", "Paid", "--tag", "beta")
    assert added.exit_code == 0 and added.stdout == "Zoe@example.com: added (active, by you); tags: beta, paid\n"
    again = cli("subscribers", "add", "zoe@example.com", "--tag", "paid")
    assert again.stdout == "zoe@example.com: already on the list; nothing changed; tags: beta, paid\n"
    assert cli("subscribers", "tag", "zoe@example.com", " Press  Kit ").stdout == "zoe@example.com: tagged press kit\n"
    assert "nothing changed" in cli("subscribers", "tag", "zoe@example.com", "press kit").stdout
    assert cli("subscribers", "untag", "zoe@example.com", "BETA").stdout == "zoe@example.com: untagged beta\n"
    missing = cli("subscribers", "tag", "nobody@example.com", "paid")
    assert missing.exit_code == 2 and "nobody@example.com is not on the list; add it first" in missing.stderr
    bad = cli("subscribers", "tag", "zoe@example.com", "a;b")
    assert bad.exit_code == 2 and "separates tags" in bad.stderr
    (line,) = cli("subscribers", "list", "--tag", "paid").stdout.splitlines()
    email, name, status, source, tags, consent = line.split("\t")
    assert (email, name, status, source, tags) == (
        "Zoe@example.com",
        "Dr. Zoë Øster",
        "active",
        "operator",
        "paid;press kit",
    )
    assert consent.startswith("operator ") and consent.endswith("(subscribers add)")
    zoe = find(engine_for(config_of(cli)), "zoe@example.com")
    assert zoe is not None and zoe.first_name == "Zoë"
    # A pending signup becomes active when the operator adds it.
    record_pending(engine_for(config_of(cli)), "pat@example.com", "", "", "hash")
    assert "now active (confirmed by you)" in cli("subscribers", "add", "pat@example.com").stdout
    injected = cli("subscribers", "add", "eve@example.com", "--name", "Eve\nBcc: victim@example.com")
    assert injected.exit_code == 2 and "--name: contains a line break" in injected.stderr


def test_the_csv_tags_column_and_first_name_column(cli: Cli, folder: Path) -> None:
    write_csv(
        cli,
        "email,name,first_name,tags\nada@example.com,Ada Lovelace,Augusta,paid; Beta\ngrace@example.org,Grace Hopper,,\n",
    )
    send(cli, TLS)
    (path,) = (folder / "outbox" / TLS).glob("ada@example.com-*.eml")
    ada = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert "Hi Augusta," in ada.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "ada@example.com\tAda Lovelace\tactive\tcsv\tbeta;paid\t" in cli("subscribers", "list").stdout
    tagged = cli("subscribers", "tag", "ada@example.com", "press")
    assert "subscribers.csv:2: the file's tags column sets this subscriber's tags at every sync" in tagged.stderr
    assert "ada@example.com\tAda Lovelace\tactive\tcsv\tbeta;paid\t" in cli("subscribers", "list").stdout
    write_csv(cli, "email,name,tags\nada@example.com,Ada,paid;x\x07y\n")
    check = cli("subscribers", "check")
    assert (
        check.exit_code == 1 and "subscribers.csv:2: tags: tag 'x\\x07y' contains a control character" in check.stdout
    )


def test_a_send_to_an_empty_list_is_refused_before_any_campaign(cli: Cli) -> None:
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "subscriberz.csv"  # a typo
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 2
    assert "the list has no active subscriber (subscriberz.csv not found): nobody to send to" in result.stderr
    assert "no campaign" in cli("status").output
