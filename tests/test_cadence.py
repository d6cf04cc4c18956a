"""Every cadence: the run a moment belongs to, each run's digest key, `every`, and one digest per run.

`digest`, `send --digest`, `schedule --next` and the preview are asked about the same moments and
must name the same digest; digests over many periods go to a real aiosmtpd server, with the state
on a real SQLite file and a real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from newsletter.config import Config, load_config
from newsletter.digest.cadence import cadence_for
from newsletter.digest.due import send_due
from newsletter.digest.runs import run_at, run_for
from newsletter.state.campaigns import campaigns_for
from newsletter.state.digests import record_for, run_decision
from newsletter.state.engine import engine_for
from newsletter.web.preview_render import Previewer

from .helpers import DATA, LINKS, WELCOME, Cli, article, at, run_async, schedule_config
from .smtpd import SmtpServer

# --- each run its own key ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "keys", "label"),
    [
        ({"cron": "0 9 * * *"}, ["2026-11-30", "2026-12-01", "2026-12-02"], "30 November 2026"),
        ({"cron": "0 9 * * mon"}, ["2026-11-30", "2026-12-07", "2026-12-14"], "week 49"),
        ({"cron": "0 9 * * mon", "every": "2w"}, ["2026-11-30", "2026-12-14", "2026-12-28"], "30 November 2026"),
        ({"cron": "0 9 * * mon", "every": "2w", "start": "2026-12-07"}, ["2026-12-07", "2026-12-21", "2027-01-04"], ""),
        ({"cron": "0 9 * * *", "every": "3d", "start": "2026-11-30"}, ["2026-11-30", "2026-12-03", "2026-12-06"], ""),
        ({"cron": "0 9 */14 * *"}, ["2026-12-01", "2026-12-15", "2026-12-29"], "1 December 2026"),  # crontab's way
        ({"cron": "0 9 1 * *"}, ["2026-12-01", "2027-01-01", "2027-02-01"], "1 December 2026"),
        ({"cron": "0 9,17 * * *"}, ["2026-11-29-1700", "2026-11-30-0900", "2026-11-30-1700"], "29 November 2026, 17:00"),
    ],
    ids=["daily", "weekly", "fortnightly", "fortnightly-from", "every-3-days", "day-step-14", "monthly", "twice-a-day"],
)
def test_each_run_of_every_cadence_has_its_own_digest_key(
    letter: Path, schedule: dict[str, str], keys: list[str], label: str
) -> None:
    config = schedule_config(letter, **schedule)
    times = cadence_for(config).runs(at("2026-11-29T12:00"), 3)
    runs = [run_at(config, t) for t in times]
    assert [r.key for r in runs] == [f"digest-{k}" for k in keys]
    assert all(r.time.hour in (9, 17) and r.time.minute == 0 for r in runs)
    if label:
        assert runs[0].label == label


def test_start_may_be_a_toml_date_or_a_string(letter: Path) -> None:
    config_file = letter / "newsletter.toml"
    for value in ("2026-12-07", '"2026-12-07"'):
        text = config_file.read_text(encoding="utf-8").replace("[schedule]\n", f'[schedule]\nevery = "2w"\nstart = {value}\n', 1)
        (letter / "other.toml").write_text(text, encoding="utf-8")
        config = load_config(letter / "other.toml", env={})
        assert config.schedule.start == dt.date(2026, 12, 7) and config.schedule.every == dt.timedelta(weeks=2)


def test_every_keeps_the_first_run_of_each_window_through_a_dst_change(letter: Path) -> None:
    config = schedule_config(letter, cron="30 2 * * sun", every="2w", start="2026-10-19")
    found = cadence_for(config).runs(at("2026-10-19T00:00"), 4)
    # 25 October 02:30 happens twice (clocks go back): once, at the first; then every other Sunday.
    assert [r.strftime("%Y-%m-%d %H:%M %Z") for r in found] == [
        "2026-10-25 02:30 CEST",
        "2026-11-08 02:30 CET",
        "2026-11-22 02:30 CET",
        "2026-12-06 02:30 CET",
    ]
    cadence = cadence_for(config)
    assert cadence.last_at_or_before(at("2026-11-21T12:00")) == at("2026-11-08T02:30")
    assert cadence.previous(at("2026-11-22T02:30")) == at("2026-11-08T02:30")


def test_a_moment_belongs_to_the_owed_run_else_the_next(letter: Path) -> None:
    config = schedule_config(letter, catch_up="2h")

    def key(now: str) -> tuple[str, bool]:
        run = run_for(config, at(now))
        assert run is not None
        return run.key, run.due

    assert key("2026-11-23T08:59") == ("digest-2026-11-23", False)
    assert key("2026-11-23T09:00") == ("digest-2026-11-23", True)
    assert key("2026-11-23T10:59") == ("digest-2026-11-23", True)
    assert key("2026-11-23T11:01") == ("digest-2026-11-30", False)  # beyond catch_up: the next run's
    assert key("2026-11-26T12:00") == ("digest-2026-11-30", False)


# --- digest, send --digest, schedule --next and the preview agree ---------------------------------


def _key(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, text
    return found.group(1)


@pytest.mark.parametrize("cron", ["0 9 * * mon", "0 9 * * *"], ids=["weekly", "daily"])
def test_every_command_names_the_same_digest_around_a_year_boundary(
    letter: Path, cli: Cli, smtp_server: SmtpServer, cron: str
) -> None:
    """2026 has an ISO week 53: the week-keyed digests of 0.1 disagreed across it. Every day from
    Monday 2026-12-28 to Monday 2027-01-04, before the run time, at it and late in the evening."""
    article(letter, "2026-12-23-before", "2026-12-23")
    article(letter, "2026-12-29-between", "2026-12-29 18:00")
    article(letter, "2026-12-31-new-year", "2026-12-31 16:00")
    cli.env.update({**LINKS, **smtp_server.env(), "NEWSLETTER_SCHEDULE_CRON": cron})
    cli.env.update({"NEWSLETTER_PATHS_SUBSCRIBERS": "subscribers.csv", "NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin"})
    config = schedule_config(letter, smtp_server, cron=cron)
    seen = []
    days = range(8) if cron == "0 9 * * mon" else range(2, 6)  # daily: the turn of the year is enough
    for day in days:
        date = dt.date(2026, 12, 28) + dt.timedelta(days=day)
        for time in ("08:00", "09:00", "21:30"):
            now = f"{date}T{time}"
            shown = _key(r"next digest: (digest-\S+),", cli("digest", "--now", now).output)
            sent = _key(r"(digest-[\d-]+)\b", cli("send", "--digest", "--dry-run", "--now", now).output)
            listed = _key(r"UTC   (digest-[\d-]+)", cli("schedule", "--next", "1", "--now", now).output)
            previewed = Previewer(config).digest(at(now))
            assert shown == sent == listed, now
            if previewed is not None:
                assert previewed.key == shown and not previewed.error, now
            seen.append(shown)
            if time == "09:00" and (cron == "0 9 * * *" or date.weekday() == 0):
                result = cli("send", "--digest", "--yes", "--now", now)  # the run's digest goes out
                assert result.exit_code == 0, result.output
                assert shown in result.output or "no digest to send" in result.output
    if cron == "0 9 * * mon":
        assert sorted(set(seen)) == ["digest-2026-12-28", "digest-2027-01-04", "digest-2027-01-11"]  # after its run
        assert [c.key for c in campaigns_for(engine_for(config))] == ["digest-2027-01-04", "digest-2026-12-28"]
    else:
        # Each day's own run until 09:00, the next day's once the run is older than catch_up (12h).
        assert seen[:3] == ["digest-2026-12-30", "digest-2026-12-30", "digest-2026-12-31"]
        assert [c.key for c in campaigns_for(engine_for(config))] == ["digest-2027-01-01", "digest-2026-12-30"]


# --- one digest per run, over many periods ---------------------------------------------------------


def _due(config: Config, now: str) -> list[str]:
    work = run_async(send_due(config, at(now), say=lambda line: None))
    assert work.errors == []
    return [o.message for o in work.outcomes]


@pytest.mark.usefixtures("database")
@pytest.mark.parametrize(
    ("cron", "runs", "articles", "sent"),
    [
        (
            "0 9 * * *",
            ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"],
            ["2026-11-29 20:00", "2026-11-30 10:00", "2026-11-30 23:00", "2026-12-02 08:59", "2026-12-04 09:00"],
            {"2026-11-30": 1, "2026-12-01": 2, "2026-12-02": 1, "2026-12-04": 1},
        ),
        (
            "0 9 1 * *",
            ["2026-11-01", "2026-12-01", "2027-01-01", "2027-02-01", "2027-03-01"],
            ["2026-10-30 12:00", "2026-11-15 12:00", "2026-11-30 12:00", "2027-01-20 12:00"],
            {"2026-11-01": 1, "2026-12-01": 2, "2027-02-01": 1},
        ),
    ],
    ids=["daily", "monthly"],
)
def test_one_digest_per_run_no_gaps_no_repeats(
    letter: Path, smtp_server: SmtpServer, cron: str, runs: list[str], articles: list[str], sent: dict[str, int]
) -> None:
    for i, date in enumerate(articles):
        article(letter, f"{date[:10]}-a{i}", date)
    config = schedule_config(letter, smtp_server, cron=cron, lookback="3d")
    for run in runs:
        _due(config, f"{run}T09:05")
        assert _due(config, f"{run}T09:06") == []  # asked again: nothing more
        _due(config, f"{run}T15:00")  # and later the same day
    engine = engine_for(config)
    assert sorted(c.key for c in campaigns_for(engine)) == [f"digest-{d}" for d in sorted(sent)]
    slugs = []
    for date, count in sent.items():
        record = record_for(engine, f"digest-{date}")
        assert record is not None and record.status == "sent" and len(record.slugs) == count, date
        slugs.extend(record.slugs)
    assert sorted(slugs) == sorted(p.stem for p in (letter / "issues").glob("*.md"))  # each once, none lost
    for run in runs:
        assert run_decision(engine, at(f"{run}T09:00")) == ("sent" if run in sent else "empty")
    assert len(smtp_server.handler.received) == 3 * len(sent)
    subjects = {r.message["Subject"] for r in smtp_server.handler.received}
    assert "Privacy Notes: 1 December 2026" in subjects


def test_fortnightly_sends_every_other_week_only(letter: Path, smtp_server: SmtpServer) -> None:
    config = schedule_config(letter, smtp_server, every="2w", start="2026-11-30")
    for week in range(4):
        monday = dt.date(2026, 11, 30) + dt.timedelta(weeks=week)
        article(letter, f"{monday - dt.timedelta(days=2)}-w{week}", str(monday - dt.timedelta(days=2)))
        _due(config, f"{monday}T09:01")
    keys = sorted(c.key for c in campaigns_for(engine_for(config)))
    assert keys == ["digest-2026-11-30", "digest-2026-12-14"]
    record = record_for(engine_for(config), "digest-2026-12-14")
    assert record is not None and record.slugs == ("2026-12-05-w1", "2026-12-12-w2")
    upcoming = run_for(config, at("2026-12-21T09:01"))
    assert upcoming is not None and upcoming.key == "digest-2026-12-28" and not upcoming.due


# --- databases written by release 0.1 ---------------------------------------------------------------


def test_a_week_sent_under_its_iso_week_key_never_goes_out_again(cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
    """0.1 sent `digest-2026-W48` on Tuesday 2026-11-24 at 09:00 and recorded a decision for the run
    of the Monday before; with the runs' own keys neither run sends anything again."""
    state = folder / "newsletter.db"
    shutil.copyfile(DATA / "state-0.1.0.sqlite", state)
    with sqlite3.connect(state) as conn:  # a decision as 0.1's scheduler wrote it, keyed by run time
        conn.execute(
            "INSERT INTO schedule_runs VALUES ('2026-11-16 08:00:00.000000', 'digest-2026-W47', 'sent', "
            "'2026-11-16 08:00:02.000000')"
        )
    cli.env.update({**LINKS, **smtp_server.env(), "NEWSLETTER_SCHEDULE_TIMEZONE": "Europe/Berlin"})
    cli.env.update({"NEWSLETTER_SCHEDULE_CATCH_UP": "2d", "NEWSLETTER_SCHEDULE_SKIP_IF_EMPTY": "false"})
    article(folder, "2026-11-24-after", "2026-11-24 12:00")  # published after week 48's digest went out
    # Monday 2026-11-23 09:00 is within catch_up, but week 48's digest already went out: nothing is owed.
    for args in (("send", "--digest", "--if-due", "--yes"), ("send", "--due", "--yes")):
        result = cli(*args, "--now", "2026-11-24T13:00")
        assert result.exit_code == 0, result.output
        assert "digest-2026-11-23" not in result.output and "sent" not in result.output
    shown = cli("digest", "--now", "2026-11-24T13:00").output
    assert "next digest: digest-2026-11-30, at Mon 2026-11-30 09:00 CET" in shown and "2026-11-24-after" in shown
    config = schedule_config(folder, smtp_server, catch_up="2d")
    run = run_for(config, at("2026-11-16T10:00"))  # 0.1's decision settles that run too
    assert run is not None and run.key == "digest-2026-11-23" and not run.due
    # By hand, the next digest goes out ahead of next Monday's run (with the new article), and stands for it.
    early = cli("send", "--digest", "--yes", "--now", "2026-11-24T13:00")
    assert "sent digest 2026-11-30 to 3 subscribers (1 article)" in early.output
    assert [c.key for c in campaigns_for(engine_for(config))] == ["digest-2026-11-30", "digest-2026-W48", WELCOME]
    at_its_run = cli("send", "--due", "--yes", "--now", "2026-11-30T09:00")
    assert "nothing due now (next: digest-2026-12-07" in at_its_run.output
    assert [r.message["Subject"] for r in smtp_server.handler.received] == ["Privacy Notes: week 49"] * 3
