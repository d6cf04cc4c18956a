"""The [schedule] value types, parsed once at load: crontab, time zone, durations, subject template.

The crontab is checked here field by field with crontab's own meaning (0 and 7 are Sunday) and its
day-of-week field is turned into names, because APScheduler 3.x reads day 0 as Monday; the digest's
trigger (digest/cron.py) is then built from fields that are already right.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

MACROS = {
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FULL_DAY_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_BOUNDS = {"minute": (0, 59), "hour": (0, 23), "day-of-month": (1, 31), "month": (1, 12)}
_DURATION = re.compile(r"(\d+)\s*([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def local_zone() -> dt.tzinfo:
    """The machine's zone (tzlocal reads /etc/localtime and TZ)."""
    from tzlocal import get_localzone

    return get_localzone()


# --- durations -------------------------------------------------------------------------------


def parse_duration(text: str, key: str = "duration") -> dt.timedelta:
    """'12h', '30m', '2d', '1w', '1h30m' or '0' -> timedelta; anything else a ConfigError naming `key`."""
    cleaned = text.strip().lower().replace(" ", "")
    if cleaned == "0":
        return dt.timedelta(0)
    if not cleaned or _DURATION.sub("", cleaned):
        raise ConfigError(f"{key}: {text!r} is not a duration; write it like 30m, 12h, 2d or 1w (or 0)")
    total = dt.timedelta(0)
    for amount, unit in _DURATION.findall(cleaned):
        total += dt.timedelta(**{_UNITS[unit]: int(amount)})
    return total


def format_duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0"


# --- crontab ---------------------------------------------------------------------------------


def _day_number(token: str, expr: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    for number, name in enumerate(DAY_NAMES):
        if token in (name, _FULL_DAY_NAMES[number]):
            return number
    raise ValueError(f"day of week {token!r} in {expr!r}: use 0-7 (0 and 7 are Sunday) or sun, mon, ..., sat")


def _step(text: str, field: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise ValueError(f"step {text!r} in {field!r} is not a positive number")
    return int(text)


def translate_day_of_week(field: str) -> str:
    """A crontab day-of-week field (0/7 = Sunday, names, ranges, steps) -> APScheduler names.

    APScheduler 3.x numbers Monday as 0, so numbers never reach it: the field is expanded to the set
    of days it means and handed over as names ("sun,tue,thu").
    """
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = _step(step_text, field) if step_text else 1
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            lo, hi = base.split("-", 1)
            first, last = _day_number(lo, field), _day_number(hi, field)
            if last == 0 and (first > 0 or hi.strip() == "7"):  # "fri-sun", "5-7", "0-7": Sunday closes the week
                last = 7
            if last < first:
                raise ValueError(f"day of week range {base!r} in {field!r} runs backwards; write it like mon-fri")
        else:
            first = _day_number(base, field)
            last = 6 if step_text else first
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def _value(token: str, name: str, field: str) -> int:
    lo, hi = _BOUNDS[name]
    lowered = token.strip().lower()
    if name == "month" and lowered in _MONTHS:
        return _MONTHS.index(lowered) + 1
    if not lowered.isdigit() or not lo <= int(lowered) <= hi:
        raise ValueError(f"{name} {token!r} in {field!r} is not a number from {lo} to {hi}")
    return int(lowered)


def _check_field(field: str, name: str) -> str:
    """One of minute, hour, day-of-month, month: `*`, numbers, ranges, steps and lists, within bounds."""
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        if step_text:
            _step(step_text, field)
        if base == "*":
            continue
        lo_text, dash, hi_text = base.partition("-")
        lo = _value(lo_text, name, field)
        if dash and _value(hi_text, name, field) < lo:
            raise ValueError(f"{name} range {base!r} in {field!r} runs backwards")
    return field.lower()


@dataclass(frozen=True)
class CronExpr:
    """A 5-field crontab, checked; `fields` are ready for APScheduler (day of week as names)."""

    expr: str
    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str
    both_days: bool  # day-of-month and day-of-week both restricted: either may match (classic cron)

    @classmethod
    def parse(cls, expr: str) -> CronExpr:
        expr = expr.strip()
        fields = MACROS.get(expr.lower(), expr).split()
        if len(fields) != 5:
            raise ValueError(
                f"{expr!r} has {len(fields)} fields; a crontab has 5: minute hour day-of-month month day-of-week"
            )
        dom, dow = fields[2], fields[4]
        try:
            checked = [_check_field(value, name) for value, name in zip(fields[:4], _BOUNDS, strict=True)]
        except ValueError as exc:
            raise ValueError(f"{expr!r}: {exc}") from None
        return cls(
            expr=expr,
            minute=checked[0],
            hour=checked[1],
            day=checked[2],
            month=checked[3],
            day_of_week=translate_day_of_week(dow.lower()),
            both_days=not dom.startswith("*") and not dow.startswith("*"),
        )

    def __str__(self) -> str:
        return self.expr


# --- the digest's subject ----------------------------------------------------------------------

SUBJECT_VARIABLES = "newsletter, period_label, week, year, period, period_start, period_end, run, articles"
DEFAULT_SUBJECT = "{{ newsletter.name }}: {{ period_label }}"


def _date(value: dt.date, fmt: str = "%-d %B %Y") -> str:
    return value.strftime(fmt)


def sample_subject_values() -> dict[str, Any]:
    """Values of the right types for every subject variable: a typo fails at start, not at the run."""
    run = dt.datetime(2026, 11, 30, 9, 0)
    return {
        "period_label": "week 49",
        "week": 49,
        "year": 2026,
        "period": "2026-11-30",
        "period_start": run - dt.timedelta(days=7),
        "period_end": run,
        "run": run,
        "articles": (),
    }


@dataclass(frozen=True)
class SubjectTemplate:
    """`[schedule] subject`, compiled once in Jinja's sandbox (the setting is text, not trusted code)."""

    source: str
    template: Any

    @classmethod
    def compile(cls, source: str) -> SubjectTemplate:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        env.filters["date"] = _date
        return cls(source, env.from_string(source))

    def render(self, **context: Any) -> str:
        return " ".join(str(self.template.render(**context)).split())
