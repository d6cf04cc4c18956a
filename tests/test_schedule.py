"""When digests go out: crontab days, DST changes, catch-up, config errors, and two schedulers at once.

No test waits for a real week: the clock is pretended (`--now`, `Clock.pretending`) so a run is due
now or seconds away. The two-process test runs real `newsletter schedule` processes against one
SQLite file and a real aiosmtpd server.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from newsletter.config import CronExpr, load_config, parse_duration
from newsletter.digest.clock import Clock
from newsletter.digest.cron import Crontab, ShiftedTrigger
from newsletter.errors import ConfigError
from newsletter.state.campaigns import campaigns_for
from newsletter.state.digests import record_for, run_decision
from newsletter.state.engine import engine_for
from newsletter.state.lock import Lock

from .helpers import LINKS, SUBSCRIBERS, Cli, article, wait_for
from .smtpd import RecordingHandler, SmtpServer

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC


def runs(expr: str, tz: ZoneInfo, start: str, count: int) -> list[dt.datetime]:
    return Crontab(CronExpr.parse(expr), tz).runs(dt.datetime.fromisoformat(start).replace(tzinfo=tz), count)


# --- crontab days ----------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["0", "7", "sun", "SUN", "sunday"])
def test_crontab_sunday(day: str) -> None:
    found = runs(f"0 9 * * {day}", BERLIN, "2026-11-23T00:00", 3)
    assert [r.strftime("%a %d %H:%M") for r in found] == ["Sun 29 09:00", "Sun 06 09:00", "Sun 13 09:00"]


@pytest.mark.parametrize("day", ["1", "mon", "Mon", "monday"])
def test_crontab_monday(day: str) -> None:
    found = runs(f"0 9 * * {day}", BERLIN, "2026-11-24T00:00", 2)
    assert [r.strftime("%a %Y-%m-%d") for r in found] == ["Mon 2026-11-30", "Mon 2026-12-07"]


def test_apscheduler_alone_would_take_0_as_monday() -> None:
    """The pitfall we translate around (APScheduler 3.x from_crontab)."""
    start = dt.datetime(2026, 11, 23, tzinfo=BERLIN)
    raw = CronTrigger.from_crontab("0 9 * * 0", timezone=BERLIN).get_next_fire_time(None, start)
    assert raw is not None and raw.strftime("%a") == "Mon"
    assert runs("0 9 * * 0", BERLIN, "2026-11-23T00:00", 1)[0].strftime("%a") == "Sun"


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1-5", "Mon Tue Wed Thu Fri"),
        ("mon-fri", "Mon Tue Wed Thu Fri"),
        ("5-7", "Fri Sat Sun"),
        ("fri-sun", "Fri Sat Sun"),
        ("*/2", "Sun Tue Thu Sat"),
        ("0,3", "Sun Wed"),
        ("0-7", "Sun Mon Tue Wed Thu Fri Sat"),
    ],
)
def test_crontab_day_lists_ranges_and_steps(field: str, days: str) -> None:
    found = runs(f"0 9 * * {field}", BERLIN, "2026-11-22T12:00", 7)  # from a Sunday noon: one week
    week = {r.strftime("%a") for r in found if r < dt.datetime(2026, 11, 29, 12, tzinfo=BERLIN)}
    assert week == set(days.split())


def test_both_day_fields_restricted_means_either_like_cron() -> None:
    found = runs("0 9 13 * fri", BERLIN, "2026-11-26T12:00", 4)
    assert [r.strftime("%a %d") for r in found] == ["Fri 27", "Fri 04", "Fri 11", "Sun 13"]


def test_macros_and_last_run() -> None:
    assert runs("@weekly", BERLIN, "2026-11-23T12:00", 1)[0].strftime("%a %H:%M") == "Sun 00:00"
    crontab = Crontab(CronExpr.parse("0 9 * * mon"), BERLIN)
    now = dt.datetime(2026, 11, 26, 12, tzinfo=BERLIN)
    assert crontab.last_at_or_before(now) == dt.datetime(2026, 11, 23, 9, tzinfo=BERLIN)
    assert crontab.last_at_or_before(dt.datetime(2026, 11, 23, 9, tzinfo=BERLIN)) == dt.datetime(
        2026, 11, 23, 9, tzinfo=BERLIN
    )


# --- daylight saving -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "start"), [(BERLIN, "2026-01-01T00:00"), (NEW_YORK, "2026-01-01T00:00")], ids=["Berlin", "New_York"]
)
@pytest.mark.parametrize("when", ["0 9 * * mon", "30 2 * * sun", "30 1 * * sun", "0 3 * * 0"])
def test_weekly_runs_through_a_year_of_dst_changes_once_per_week(tz: ZoneInfo, start: str, when: str) -> None:
    """A year of weekly runs, both changes included: one run in every ISO week, never two, never none."""
    found = runs(when, tz, start, 60)
    weeks = [r.isocalendar()[:2] for r in found]
    assert len(set(weeks)) == len(weeks)  # never twice in a week
    for earlier, later in itertools.pairwise(found):
        gap = later.astimezone(UTC) - earlier.astimezone(UTC)
        assert dt.timedelta(hours=166) <= gap <= dt.timedelta(hours=170), (earlier, later)  # never skipped


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        (BERLIN, "2026-03-29", "03:30 CEST"),  # 02:00 -> 03:00: 02:30 does not exist that night
        (NEW_YORK, "2026-03-08", "03:30 EDT"),
    ],
)
def test_run_time_in_the_skipped_hour_fires_once_right_after(tz: ZoneInfo, day: str, expected: str) -> None:
    found = runs("30 2 * * sun", tz, f"{day}T00:00", 2)
    assert found[0].strftime("%Y-%m-%d %H:%M %Z") == f"{day} {expected}"
    assert found[1].date() - found[0].date() == dt.timedelta(days=7)


@pytest.mark.parametrize(
    ("tz", "expr", "day", "expected"),
    [
        (BERLIN, "30 2 * * sun", "2026-10-25", "02:30 CEST"),  # 03:00 -> 02:00: 02:30 happens twice
        (NEW_YORK, "30 1 * * sun", "2026-11-01", "01:30 EDT"),
    ],
)
def test_run_time_in_the_repeated_hour_fires_once(tz: ZoneInfo, expr: str, day: str, expected: str) -> None:
    found = runs(expr, tz, f"{day}T00:00", 2)
    assert found[0].strftime("%Y-%m-%d %H:%M %Z") == f"{day} {expected}"
    assert found[1].date() - found[0].date() == dt.timedelta(days=7)  # not an hour later again


def test_daily_run_in_the_repeated_hour_is_not_doubled() -> None:
    found = runs("30 2 * * *", BERLIN, "2026-10-24T00:00", 3)
    assert [r.strftime("%d %H:%M %Z") for r in found] == ["24 02:30 CEST", "25 02:30 CEST", "26 02:30 CET"]


def test_shifted_trigger_maps_a_pretended_clock_onto_real_time() -> None:
    crontab = Crontab(CronExpr.parse("0 9 * * mon"), BERLIN)
    clock = Clock.pretending(BERLIN, dt.datetime(2026, 11, 23, 8, 59, 57, tzinfo=BERLIN), at_epoch=1_000_000)
    real_now = dt.datetime.fromtimestamp(1_000_000, UTC)
    fire = ShiftedTrigger(crontab, clock.offset).get_next_fire_time(None, real_now)
    assert fire is not None and fire.astimezone(UTC) - real_now == dt.timedelta(seconds=3)


# --- configuration ---------------------------------------------------------------------------


def test_durations() -> None:
    assert parse_duration("12h") == dt.timedelta(hours=12)
    assert parse_duration("30m") == dt.timedelta(minutes=30)
    assert parse_duration("2d") == dt.timedelta(days=2)
    assert parse_duration("1h30m") == dt.timedelta(minutes=90)
    assert parse_duration("0") == dt.timedelta(0)
    for bad in ("", "12", "h", "soon", "12x", "-1h"):
        with pytest.raises(ConfigError, match="is not a duration"):
            parse_duration(bad, "[schedule] catch_up")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("CRON", "0 9 * *", "[schedule] cron: '0 9 * *' has 4 fields"),
        ("CRON", "0 9 * * 8", "[schedule] cron: day of week '8'"),
        ("CRON", "61 9 * * mon", "[schedule] cron: '61 9 * * mon'"),
        ("CRON", "0 9 * * fri-mon", "runs backwards"),
        ("TIMEZONE", "Europe/Atlantis", "[schedule] timezone: 'Europe/Atlantis' is not a known IANA time zone"),
        ("CATCH_UP", "soon", "[schedule] catch_up: 'soon' is not a duration"),
        ("LOOKBACK", "a week", "[schedule] lookback: 'a week' is not a duration"),
        ("MODE", "weekly", "[schedule] mode: 'weekly' is not one of 'digest', 'each'"),
        ("EVERY", "fortnight", "[schedule] every: 'fortnight' is not a duration"),
        ("START", "next week", "[schedule] start: 'next week' is not a date; write it as YYYY-MM-DD"),
    ],
)
def test_bad_schedule_settings_are_one_line_errors(cli: Cli, key: str, value: str, message: str) -> None:
    config = cli.folder / "newsletter.toml"
    good = config.read_text(encoding="utf-8")
    kept = [line for line in good.splitlines() if not line.startswith(f"{key.lower()} =")]
    at = kept.index("[schedule]") + 1
    config.write_text("\n".join([*kept[:at], f'{key.lower()} = "{value}"', *kept[at:]]) + "\n", encoding="utf-8")
    for args in (("schedule", "--next", "1"), ("digest",)):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("newsletter: error: newsletter.toml: ") and message in result.output
        assert result.output.count("\n") == 1
    # The same value from the environment: the error names the variable.
    config.write_text(good, encoding="utf-8")
    cli.env[f"NEWSLETTER_SCHEDULE_{key}"] = value
    for args in (("schedule", "--next", "1"), ("digest",)):
        result = cli(*args)
        assert result.exit_code == 2
        expected = f"newsletter: error: environment variable NEWSLETTER_SCHEDULE_{key}: "
        assert result.output.startswith(expected) and message.split(": ", 1)[-1] in result.output
        assert result.output.count("\n") == 1


def test_cross_field_schedule_errors_are_one_line(cli: Cli) -> None:
    for key, value, message in (
        # The values come from the environment: the errors name those variables.
        ("EVERY", "30s", "NEWSLETTER_SCHEDULE_EVERY: must be 0 (every cron run) or at least 1m"),
        ("SUBJECT", "{{ period_lable }}", "NEWSLETTER_SCHEDULE_SUBJECT: 'period_lable' is undefined; the template may use"),
    ):
        cli.env = {f"NEWSLETTER_SCHEDULE_{key}": value}
        result = cli("schedule", "--next", "1")
        assert result.exit_code == 2 and result.output.count("\n") == 1 and message in result.output, result.output


def test_next_lists_each_run_in_local_and_utc_time_with_what_it_holds(cli: Cli) -> None:
    result = cli("schedule", "--next", "5", "--now", "2026-10-20T12:00")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Mon 2026-10-26 09:00 CET   2026-10-26 08:00 UTC   digest-2026-10-26: no articles yet: skipped (skip_if_empty)",
        "Mon 2026-11-02 09:00 CET   2026-11-02 08:00 UTC   digest-2026-11-02: no articles yet: skipped (skip_if_empty)",
        "Mon 2026-11-09 09:00 CET   2026-11-09 08:00 UTC   digest-2026-11-09: 1 article: "
        "Café – “quotes” 🙂: how TLS certificates really get checked (2026-11-09-tls-certificates)",
        "Mon 2026-11-16 09:00 CET   2026-11-16 08:00 UTC   digest-2026-11-16: 1 article: "
        "Password managers, passkeys and the people you love (2026-11-16-password-managers)",
        "Mon 2026-11-23 09:00 CET   2026-11-23 08:00 UTC   digest-2026-11-23: 1 article: "
        "Welcome to Privacy Notes (2026-11-23-welcome)",
    ]
    # Three hours after a run, within catch_up: that run is still owed, and listed first.
    owed = cli("schedule", "--next", "2", "--now", "2026-10-19T12:00")
    assert owed.output.splitlines()[0].startswith("Mon 2026-10-19 09:00 CEST   2026-10-19 07:00 UTC   digest-2026-10-19 (due now): ")


# --- catch-up after downtime -----------------------------------------------------------------


def _schedule_env(cli: Cli, server: SmtpServer, **schedule: str) -> None:
    # An absolute config path, so subprocesses and in-process calls read the same file.
    cli.env["NEWSLETTER_CONFIG"] = str(cli.folder / "newsletter.toml")
    cli.env.update(server.env())
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "subscribers.csv"
    cli.env.update(LINKS)
    cli.env.update({f"NEWSLETTER_SCHEDULE_{k.upper()}": v for k, v in schedule.items()})


@pytest.mark.usefixtures("database")
@pytest.mark.e2e
def test_missed_run_within_catch_up_is_sent_at_start(letter: Path, cli: Cli, smtp_server: SmtpServer) -> None:
    article(letter, "2026-11-20-a", "2026-11-20")
    _schedule_env(cli, smtp_server, catch_up="12h")
    # Down at Monday 09:00, back at 14:30 the same day.
    result = cli.subprocess("schedule", "--now", "2026-11-23T14:30", "--max-runs", "1")
    assert result.returncode == 0, result.stderr
    assert "missed the run at Mon 2026-11-23 09:00 CET (08:00 UTC), catching up (5h30m late)" in result.stderr
    assert "sent digest 2026-11-23 to 3 subscribers" in result.stderr
    assert result.stderr.rstrip().endswith("stopped")
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)
    # Started again later: the run is settled, nothing more.
    again = cli("schedule", "--now", "2026-11-23T15:00", "--next", "1")
    assert again.exit_code == 0
    assert len(smtp_server.handler.received) == 3


@pytest.mark.usefixtures("database")
@pytest.mark.e2e
def test_missed_run_beyond_catch_up_is_skipped(letter: Path, cli: Cli, smtp_server: SmtpServer) -> None:
    article(letter, "2026-11-20-a", "2026-11-20")
    _schedule_env(cli, smtp_server, catch_up="2h")
    result = cli.subprocess("schedule", "--now", "2026-11-23T14:30", "--max-runs", "1")
    assert result.returncode == 0, result.stderr
    assert "missed run too old: skipped (the run at Mon 2026-11-23 09:00 CET (08:00 UTC) is 5h30m late" in result.stderr
    assert smtp_server.handler.received == []
    config = load_config(letter / "newsletter.toml", env=cli.env)
    assert run_decision(engine_for(config), dt.datetime(2026, 11, 23, 9, tzinfo=BERLIN)) == "too-old"
    assert record_for(engine_for(config), "digest-2026-11-23") is None  # the articles wait for the next digest


@pytest.mark.usefixtures("database")
@pytest.mark.e2e
def test_nothing_new_is_logged_as_skipped(letter: Path, cli: Cli, smtp_server: SmtpServer) -> None:
    _schedule_env(cli, smtp_server)
    result = cli.subprocess("schedule", "--now", "2026-11-23T09:10", "--max-runs", "1")
    assert result.returncode == 0, result.stderr
    assert "nothing new: skipped" in result.stderr
    assert smtp_server.handler.received == []


@pytest.mark.usefixtures("database")
def test_lease_lock_excludes_a_second_holder_until_released_or_expired(letter: Path) -> None:
    engine = engine_for(load_config(letter / "newsletter.toml", env={}))
    first, second = Lock(engine, "digest"), Lock(engine, "digest")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.stale_after = dt.timedelta(seconds=-1)  # a holder that went silent: its lease has run out
    assert second.try_acquire()  # (renewing itself is allowed)
    third = Lock(engine, "digest")
    third.stale_after = dt.timedelta(seconds=60)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE locks SET heartbeat_at = '2000-01-01 00:00:00'")
    assert third.try_acquire()


# --- two schedulers, one database ------------------------------------------------------------


@pytest.mark.usefixtures("database")
@pytest.mark.e2e
def test_two_scheduler_processes_send_one_digest(letter: Path, cli: Cli, smtp_server: SmtpServer) -> None:
    """Started twice by mistake: both fire at the same second; one campaign, one message each."""
    article(letter, "2026-11-20-a", "2026-11-20")
    _schedule_env(cli, smtp_server)
    fire_at = time.time() + 5  # real time at which both pretend it is Monday 09:00:00
    env = {**os.environ, **cli.env}
    logs = [letter / f"scheduler-{i}.log" for i in range(2)]
    procs = []
    for log in logs:
        with log.open("w") as out:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "newsletter",
                        "schedule",
                        "--now",
                        "2026-11-23T09:00:00",
                        "--now-at",
                        str(fire_at),
                    ],
                    cwd=letter,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        wait_for(lambda: any("sent digest 2026-11-23" in log.read_text() for log in logs), 40)
        time.sleep(1.5)  # let the other one reach its decision too
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=20) for proc in procs]
    texts = [log.read_text() for log in logs]
    print(*texts, sep="\n----\n")  # shown when the test fails
    assert codes == [0, 0], texts
    assert all("SIGTERM received: stopping" in t and t.rstrip().endswith("stopped") for t in texts), texts
    assert sum(t.count("sent digest 2026-11-23 to 3 subscribers") for t in texts) == 1, texts
    if all("next run at Mon 2026-11-23 09:00" in t for t in texts):  # both were up before the run time
        assert sum(t.count("digest 2026-11-23 was already sent: skipped") for t in texts) == 1, texts
    assert "Traceback" not in "".join(texts)
    assert sorted(smtp_server.handler.recipients()) == sorted(SUBSCRIBERS)
    config = load_config(letter / "newsletter.toml", env=cli.env)
    assert [c.key for c in campaigns_for(engine_for(config))] == ["digest-2026-11-23"]


@pytest.mark.usefixtures("database")
@pytest.mark.e2e
def test_sigterm_mid_send_then_restart_sends_each_subscriber_once(
    letter: Path,
    cli: Cli,
) -> None:
    """A restart in the middle of a send: the digest stays pending, the next start finishes it."""
    many = [f"reader{i}@example.com" for i in range(8)]
    (letter / "subscribers.csv").write_text("email,name\n" + "".join(f"{e},\n" for e in many), encoding="utf-8")
    article(letter, "2026-11-20-a", "2026-11-20")

    def slow(envelope: object) -> None:
        time.sleep(0.3)  # a slow relay, so SIGTERM lands while messages are still to send
        return None

    handler = RecordingHandler(data_reply=slow)  # type: ignore[arg-type]
    with SmtpServer(handler) as server:
        _schedule_env(cli, server, catch_up="12h")
        cli.env["NEWSLETTER_SMTP_CONNECTIONS"] = "1"
        env = {**os.environ, **cli.env}
        log = letter / "first.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "newsletter", "schedule", "--now", "2026-11-23T10:00"],
                cwd=letter,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            assert wait_for(lambda: len(handler.received) >= 2, 30), log.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
        first = log.read_text()
        print(first)
        assert code == 0, first
        assert "missed the run at Mon 2026-11-23 09:00 CET (08:00 UTC), catching up" in first
        assert "digest 2026-11-23: stopped before the end; the next start resumes it" in first
        assert len(handler.received) < len(many)

        second = cli.subprocess("schedule", "--now", "2026-11-23T10:05", "--max-runs", "1")
        print(second.stderr)
        assert second.returncode == 0, second.stderr
        assert "resuming digest 2026-11-23 (interrupted earlier)" in second.stderr
        assert f"sent digest 2026-11-23 to {len(many)} subscribers (1 article)" in second.stderr
        assert sorted(handler.recipients()) == sorted(many)  # everyone once, no one twice
