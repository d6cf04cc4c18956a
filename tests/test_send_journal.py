"""The outcome journal: appended per message, folded into SQLite in batches, replayed after a kill."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.content.articles import resolve_article
from newsletter.content.issue import issue_for
from newsletter.content.subscribers import iter_subscribers
from newsletter.send import journal
from newsletter.send.journal import Journal, read_journal
from newsletter.send.recording import current_counts, journal_for, replay_journal
from newsletter.state import campaigns, deliveries
from newsletter.state.campaigns import CampaignRow
from newsletter.state.engine import dispose_all, engine_for
from newsletter.state.outcomes import AsyncOutcomeRecorder, Outcome, OutcomeRecorder
from newsletter.state.schema import deliveries as deliveries_table
from newsletter.state.suppressions import reason_for

from .helpers import FAST, TLS, Cli, config_of, counts, run_async, write_list
from .smtpd import SmtpServer


def open_campaign(cli: Cli) -> tuple[CampaignRow, dict[str, int]]:
    """A campaign with its delivery rows, nothing sent: what a run killed right after the import leaves."""
    config = config_of(cli)
    engine = engine_for(config)
    issue = issue_for(resolve_article(TLS, config.path("issues")))
    campaign = campaigns.create_campaign(engine, issue.key, issue.content_hash, 1, issue.subject, issue.title)
    run = campaigns.begin_run(engine, campaign.id)
    deliveries.add_subscribers(engine, campaign.id, run, iter_subscribers(config.path("subscribers")))
    d = deliveries_table.c
    with engine.connect() as conn:
        ids = dict(conn.execute(select(d.email, d.id).where(d.campaign_id == campaign.id)).all())
    return campaign, ids


def test_torn_last_line_and_garbled_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "state.db.journal-1"
    good = [Outcome(1, "sent", 1, 1e9, "250 ok"), Outcome(2, "deferred", 3, 1e9 + 1, "451 try\tlater\r\nplease")]
    path.write_bytes(journal.encode(good[0]) + b"garbage line\n" + journal.encode(good[1]) + b"3\ts\t1\t0\t1000")
    outcomes = read_journal(path)
    assert [o.delivery_id for o in outcomes] == [1, 2]
    assert outcomes[1].reply == "451 try later  please"  # tabs and line breaks cannot split a line
    assert outcomes[1].attempts == 3 and outcomes[1].status == "deferred"
    assert read_journal(tmp_path / "missing") == []


def test_folds_in_batches_and_removes_the_file_at_close(tmp_path: Path) -> None:
    batches: list[list[int]] = []

    def fold(outcomes: Sequence[Outcome]) -> None:
        batches.append([o.delivery_id for o in outcomes])

    path = tmp_path / "state.db.journal-7"
    log = Journal(path, fold, fold_every=2, fold_after=3600)
    for i in range(1, 6):
        log.append(Outcome(i, "sent", 1, time.time(), "250 ok"))
        # Durable at once: the line is in the file before the next message, folded or not.
        assert i in {o.delivery_id for o in read_journal(path)} or any(i in b for b in batches)
    assert batches == [[1, 2], [3, 4]]
    assert [o.delivery_id for o in read_journal(path)] == [5]  # folded lines are truncated away
    log.close()
    assert batches[-1] == [5] and not path.exists()


def test_replay_is_idempotent_keeps_the_last_outcome_per_row_and_suppresses(cli: Cli, folder: Path) -> None:
    write_list(folder, 4, cli)
    campaign, ids = open_campaign(cli)
    config = config_of(cli)
    engine = engine_for(config)
    first, second = ids["reader000@example.org"], ids["reader001@example.org"]
    lines = [
        Outcome(first, "deferred", 1, 1_800_000_000.0, "451 busy"),
        Outcome(first, "sent", 2, 1_800_000_010.5, "250 queued"),
        Outcome(second, "failed", 1, 1_800_000_011.0, "550 5.1.1 no such user", suppress=True),
    ]
    data = b"".join(journal.encode(o) for o in lines)
    path = journal_for(config, campaign)
    for _ in range(2):  # killed between the fold's commit and the file's removal: replayed twice
        path.write_bytes(data)
        assert replay_journal(config, engine, campaign) == 3
        assert not path.exists()
    d = deliveries_table.c
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(deliveries_table).where(d.id.in_([first, second])))}
    assert (rows[first].status, rows[first].attempts, rows[first].last_reply) == ("sent", 2, "250 queued")
    assert rows[first].sent_at == lines[1].when
    assert (rows[second].status, rows[second].attempts) == ("failed", 1)
    assert reason_for(engine, "reader001@example.org") == "bounced"
    assert counts(cli) == {"sent": 1, "failed": 1, "pending": 2}


def test_send_replays_a_journal_left_by_a_killed_run_before_sending(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    addresses = write_list(folder, 10, cli)
    cli.env.update({**smtp_server.env(), **FAST})
    campaign, ids = open_campaign(cli)
    # The killed run had sent five (in its journal, not yet folded) and its last line is torn.
    path = journal_for(config_of(cli), campaign)
    data = b"".join(journal.encode(Outcome(ids[a], "sent", 1, time.time(), "250 ok")) for a in addresses[:5])
    path.write_bytes(data + f"{ids[addresses[5]]}\ts\t1".encode())
    # Before any rerun, status counts and a dry run already see the journal's outcomes.
    assert current_counts(config_of(cli), campaign) == {"sent": 5, "pending": 5}
    assert counts(cli) == {"pending": 10}  # the database alone lags
    dry = cli("send", TLS, "--dry-run")
    assert "dry run: 5 messages rendered" in dry.output and "5 already sent" in dry.output, dry.output
    assert path.exists()  # a dry run changes nothing
    dispose_all()
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.handler.recipients()) == addresses[5:]
    assert "(5 were sent by earlier runs of this campaign)" in result.output
    assert counts(cli) == {"sent": 10}
    assert not path.exists()


def test_invalid_rows_are_skipped_and_the_send_says_how_many_and_where(
    cli: Cli, folder: Path, smtp_server: SmtpServer
) -> None:
    write_list(folder, 3, cli)
    with (folder / "subscribers.csv").open("a", encoding="utf-8") as fh:
        fh.write("not-an-address,Nobody,active,X\nreader000@EXAMPLE.org,Twice,active,Y\n")
    cli.env.update({**smtp_server.env(), **FAST})
    result = cli("send", TLS, "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(smtp_server.handler.recipients()) == [f"reader00{i}@example.org" for i in range(3)]
    assert "note: skipped 2 invalid rows of " in result.stderr
    assert "lines 5, 6 (details: newsletter subscribers check)" in result.stderr
    assert counts(cli) == {"sent": 3}


@pytest.mark.usefixtures("database")
def test_a_row_retried_within_a_batch_keeps_its_last_outcome(cli: Cli, folder: Path) -> None:
    """Two batches recorded apart write the same values for the same outcomes (absolute, replayable).

    SQLite's recorder (the journal's fold) and PostgreSQL's (one statement per group commit) write
    exactly the same rows.
    """
    write_list(folder, 4, cli)
    campaign, ids = open_campaign(cli)
    engine = engine_for(config_of(cli))
    a, b, c, d = (ids[f"reader00{i}@example.org"] for i in range(4))
    batches = [
        [Outcome(a, "deferred", 1, 1_800_000_000.25, "451 busy"), Outcome(a, "sent", 2, 1_800_000_001.5, "250 ok")],
        [Outcome(c, "deferred", 1, 1_800_000_000.25, "451 busy"), Outcome(c, "sent", 2, 1_800_000_001.5, "250 ok")],
    ]
    first = batches[0] + [Outcome(b, "failed", 1, 1e9, "550 no", True)]
    second = batches[1] + [Outcome(d, "failed", 1, 1e9, "550 no", True)]
    if engine.dialect.name == "sqlite":
        recorder = OutcomeRecorder(engine, campaign.key)
        recorder.record(first)
        recorder.record(second)
        recorder.close()
    else:

        async def record() -> None:
            on_loop = await AsyncOutcomeRecorder.connect(engine, campaign.key)
            await on_loop.record(first)
            await on_loop.record(second)
            await on_loop.close()

        run_async(record())
    cols = deliveries_table.c
    with engine.connect() as conn:
        rows = {
            r.id: r[1:]
            for r in conn.execute(
                select(cols.id, cols.status, cols.attempts, cols.last_reply, cols.sent_at, cols.updated_at)
            )
        }
    assert rows[a] == rows[c] and rows[b] == rows[d]
    sent_at = Outcome(a, "sent", 2, 1_800_000_001.5, "").when
    assert rows[a] == ("sent", 2, "250 ok", sent_at, sent_at)
    assert rows[b][:4] == ("failed", 1, "550 no", None)
    assert reason_for(engine, "reader001@example.org") == reason_for(engine, "reader003@example.org") == "bounced"
