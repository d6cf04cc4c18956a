"""`subscribers import`: exports of Mailchimp, Substack, Buttondown and listmonk (fixtures in tests/data/imports,
written from the services' documented columns), --map, --dry-run, and the suppression list winning.

Through the real CLI on SQLite and PostgreSQL; the last test sends to what was imported.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.state.engine import engine_for
from newsletter.state.schema import subscribers as subscribers_table
from newsletter.state.subscribers import find
from newsletter.state.suppressions import reason_for, suppress

from .helpers import DATA, TLS, Cli, config_of

pytestmark = pytest.mark.usefixtures("database")
IMPORTS = DATA / "imports"


@pytest.fixture
def cli_empty(cli: Cli) -> Cli:
    """The CLI in a folder whose own CSV list does not exist: the list is what is imported."""
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "none.csv"
    return cli


def copy(cli: Cli, name: str) -> str:
    shutil.copyfile(IMPORTS / name, cli.folder / name)
    return name


def run(cli: Cli, *args: str) -> tuple[int, list[str]]:
    result = cli("subscribers", "import", *args)
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout.splitlines()


def statuses(cli: Cli) -> dict[str, str]:
    return {line.split("\t")[0]: line.split("\t")[2] for line in cli("subscribers", "list").stdout.splitlines()}


def test_mailchimp_exports_names_tags_fields_and_their_statuses(cli_empty: Cli) -> None:
    cli = cli_empty
    code, out = run(cli, copy(cli, "mailchimp_subscribed_members.csv"))
    assert code == 0
    assert out[0].startswith("mailchimp_subscribed_members.csv:4: 'not-an-address' is not a valid email address")
    assert out[1] == (
        "mailchimp_subscribed_members.csv:5: ADA@example.com is a duplicate of line 2 (case is ignored); "
        "only the first is taken"
    )
    assert out[-1] == (
        "mailchimp_subscribed_members.csv (mailchimp): 2 added, 0 updated, 0 suppressed, 2 skipped "
        "(0 already as in the file)"
    )
    config = config_of(cli)
    ada = find(engine_for(config), "ada@example.com")
    assert ada is not None
    assert (ada.name, ada.first_name, ada.tags, ada.source) == (
        "Ada Lovelace",
        "Ada",
        ("beta testers", "paid"),
        "import",
    )
    assert ada.fields["phone_number"] == "+44 20 7946 0000" and ada.fields["last_name"] == "Lovelace"
    assert f"{ada.consent_at:%Y-%m-%d %H:%M:%S}" == "2024-03-01 09:13:02"  # CONFIRM_TIME
    assert ada.consent_detail == "mailchimp export mailchimp_subscribed_members.csv line 2"
    # No IP address, rating or Mailchimp id is kept.
    with engine_for(config).connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(select(subscribers_table)) for v in row)
    assert "198.51.100.7" not in stored and "110000001" not in stored and "member_rating" not in stored
    # The unsubscribed and cleaned exports suppress; nobody there becomes active.
    assert run(cli, copy(cli, "mailchimp_unsubscribed_members.csv"))[1][-1].endswith(
        "0 added, 0 updated, 1 suppressed, 0 skipped (0 already as in the file)"
    )
    assert run(cli, copy(cli, "mailchimp_cleaned_members.csv"))[0] == 0
    engine = engine_for(config)
    assert reason_for(engine, "left@example.com") == "unsubscribed"
    assert reason_for(engine, "gone@example.net") == "bounced"
    assert statuses(cli) == {"ada@example.com": "active", "grace@example.org": "active"}
    # Importing the same file again changes nothing.
    again = run(cli, "mailchimp_subscribed_members.csv")[1][-1]
    assert "0 added, 0 updated, 0 suppressed, 2 skipped (2 already as in the file)" in again


def test_substack_email_disabled_is_suppressed_never_active(cli_empty: Cli) -> None:
    cli = cli_empty
    code, out = run(cli, copy(cli, "substack_email_list.csv"))
    assert code == 0 and out[-1].startswith("substack_email_list.csv (substack): 2 added, 0 updated, 1 suppressed")
    assert reason_for(engine_for(config_of(cli)), "quiet@example.com") == "unsubscribed"
    assert statuses(cli) == {"reader@example.com": "active", "free@example.net": "active"}
    reader = find(engine_for(config_of(cli)), "reader@example.com")
    assert reader is not None and reader.fields["plan"] == "paid" and "stripe_customer_id" not in reader.fields
    assert "cus_" not in str(reader.fields)


def test_buttondown_types_metadata_and_tags(cli_empty: Cli) -> None:
    cli = cli_empty
    code, out = run(cli, copy(cli, "buttondown_subscribers.csv"))
    assert code == 0
    assert "buttondown_subscribers.csv:4: warning: new@example.com: never confirmed in Buttondown (unactivated)" in (
        "\n".join(out)
    )
    assert any(
        line.startswith("buttondown_subscribers.csv:6: subscriber_type 'mystery' is not one of 'regular'")
        for line in out
    )
    assert out[-1].startswith("buttondown_subscribers.csv (buttondown): 2 added, 0 updated, 1 suppressed, 2 skipped")
    mira = find(engine_for(config_of(cli)), "mira@example.de")
    assert mira is not None and mira.first_name == "Mira" and mira.tags == ("privacy", "tls")
    assert mira.fields["city"] == "Berlin" and mira.fields["plan"] == '{"tier": 2}'
    assert reason_for(engine_for(config_of(cli)), "bye@example.com") == "unsubscribed"
    assert "new@example.com" not in statuses(cli)


def test_listmonk_attributes_and_blocklist(cli_empty: Cli) -> None:
    cli = cli_empty
    code, out = run(cli, copy(cli, "listmonk_subscribers.csv"))
    assert code == 0 and out[-1].startswith("listmonk_subscribers.csv (listmonk): 1 added, 0 updated, 2 suppressed")
    jean = find(engine_for(config_of(cli)), "jean@example.fr")
    assert jean is not None and (jean.first_name, jean.fields["city"], jean.fields["plan"]) == ("Jean", "Paris", "pro")
    assert f"{jean.consent_at:%Y-%m-%d %H:%M}" == "2024-05-02 08:00"  # created_at, in UTC
    engine = engine_for(config_of(cli))
    assert reason_for(engine, "blocked@example.fr") == reason_for(engine, "off@example.fr") == "unsubscribed"


def test_map_format_and_dry_run(cli_empty: Cli) -> None:
    cli = cli_empty
    (cli.folder / "people.csv").write_text(
        "E-Mail;Vorname;Gruppe\nhans@example.de;Hans;Vip\n".replace(";", ","), encoding="utf-8"
    )
    unknown = cli("subscribers", "import", "people.csv")
    assert unknown.exit_code == 2
    assert "people.csv:1: not a known export (mailchimp, substack, buttondown, listmonk) and no 'email' column" in (
        unknown.stderr
    )
    assert "--map COLUMN=email" in unknown.stderr and "(columns: E-Mail, Vorname, Gruppe)" in unknown.stderr
    wrong = cli("subscribers", "import", "people.csv", "--map", "Mail=email")
    assert wrong.exit_code == 2 and "--map names the column 'mail', which is not in the header" in wrong.stderr
    args = ["people.csv", "--map", "E-Mail=email", "--map", "Vorname=first_name", "--map", "Gruppe=tags"]
    code, out = run(cli, *args, "--dry-run")
    assert code == 0 and out[-1] == (
        "people.csv (csv): 1 added, 0 updated, 0 suppressed, 0 skipped (0 already as in the file); "
        "dry run: nothing was changed"
    )
    assert find(engine_for(config_of(cli)), "hans@example.de") is None
    assert run(cli, *args)[0] == 0
    hans = find(engine_for(config_of(cli)), "hans@example.de")
    assert hans is not None and hans.first_name == "Hans" and hans.tags == ("vip",)
    forced = cli("subscribers", "import", copy(cli, "listmonk_subscribers.csv"), "--format", "mailchimp")
    assert forced.exit_code == 2 and "no email column for the mailchimp format" in forced.stderr


def test_suppression_and_erasure_win_over_an_import(cli_empty: Cli) -> None:
    cli = cli_empty
    engine = engine_for(config_of(cli))
    suppress(engine, "ada@example.com", "complained", "feedback loop")
    assert cli("subscribers", "remove", "grace@example.org").exit_code == 0
    code, out = run(cli, copy(cli, "mailchimp_subscribed_members.csv"))
    assert code == 0 and out[-1].endswith("0 added, 0 updated, 2 suppressed, 2 skipped (0 already as in the file)")
    assert statuses(cli) == {}
    assert reason_for(engine, "ada@example.com") == "complained"


def test_an_import_activates_a_pending_signup_and_the_send_reaches_what_was_imported(
    cli_empty: Cli, folder: Path
) -> None:
    from newsletter.state.signups import record_pending

    cli = cli_empty
    engine = engine_for(config_of(cli))
    record_pending(engine, "free@example.net", "", "", "hash")
    assert statuses(cli) == {"free@example.net": "pending"}
    run(cli, copy(cli, "substack_email_list.csv"))
    free = find(engine, "free@example.net")
    assert free is not None and free.effective == "active" and free.consent_how == "import"
    assert cli("send", TLS, "--yes").exit_code == 0
    sent = sorted(p.name.split("-")[0] for p in (folder / "outbox" / TLS).glob("*.eml"))
    assert sent == ["free@example.net", "reader@example.com"]
