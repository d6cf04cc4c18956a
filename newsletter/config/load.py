"""Loading the configuration: built-in defaults < newsletter.toml < NEWSLETTER_<SECTION>_<KEY> variables.

Every value is converted to its section's type here, once; each error is one line naming the key
(or variable, or file) and saying what to do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import tomllib
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError
from .checks import Keys, validate
from .schedule import SUBJECT_VARIABLES, CronExpr, SubjectTemplate, parse_duration
from .sections import SECTIONS, Config

CONFIG_NAME = "newsletter.toml"
ENV_PREFIX = "NEWSLETTER_"
# Secrets are never read from files (they would end up in the repository).
SECRET_VARIABLES = {"NEWSLETTER_SMTP_PASSWORD", "NEWSLETTER_SECRET_KEY", "NEWSLETTER_BOUNCES_PASSWORD"}


def _fields(section_type: type) -> dict[str, tuple[str, Any]]:
    """TOML key -> (dataclass attribute, type); `from_` is spelled `from` in the file."""
    hints = typing.get_type_hints(section_type)
    return {f.name.rstrip("_"): (f.name, hints[f.name]) for f in dataclasses.fields(section_type)}


def _zone(text: str) -> dt.tzinfo:
    if not text:
        from .schedule import local_zone

        return local_zone()
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'{text!r} is not a known IANA time zone; use a name like "Europe/Berlin" or "America/New_York"'
        ) from None


def _subject(text: str) -> SubjectTemplate:
    from jinja2 import TemplateError

    try:
        return SubjectTemplate.compile(text)
    except TemplateError as exc:
        raise ValueError(f"{exc.message}; the template may use {SUBJECT_VARIABLES}") from None


def _cron(text: str) -> CronExpr:
    try:
        return CronExpr.parse(text)
    except ValueError as exc:
        raise ValueError(f'{exc}; e.g. "0 9 * * mon" is Mondays at 09:00') from None


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD") from None


# Types that are written as text and parsed into a value.
_PARSED: dict[Any, Callable[[str], Any]] = {
    dt.date: _day,
    CronExpr: _cron,
    dt.tzinfo: _zone,
    dt.timedelta: lambda text: parse_duration(text, "value"),
    SubjectTemplate: _subject,
}


def _coerce(where: str, hints: Any, value: Any, from_env: bool) -> Any:
    """Check (file) or convert (environment string) one value against its annotation."""
    origin = typing.get_origin(hints)
    if origin is Literal:
        allowed = typing.get_args(hints)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(f"{where}: {value!r} is not one of {choices}")
        return value
    if hints is bool:
        if from_env:
            lowered = str(value).strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ConfigError(f"{where}: {value!r} is not a boolean; use true or false")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hints in (int, float):
        if from_env:
            try:
                number = hints(value)
            except ValueError:
                raise ConfigError(f"{where}: {value!r} is not a number") from None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        elif hints is int and not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        else:
            number = hints(value)
        # nan passes every comparison check (a nan timeout never times out), inf overflows timers.
        if not math.isfinite(number):
            raise ConfigError(f"{where}: {value!r} is not a finite number; give a value like 30")
        return number
    if hints is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a path as a non-empty string, got {value!r}")
        return Path(value)
    if hints is dt.date and type(value) is dt.date:  # a TOML date: start = 2026-12-07
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string (in quotes), got {value!r}")
    if hints is str:
        return value
    parse = _PARSED.get(hints)
    if parse is None:  # pragma: no cover - a new setting type without a parser
        raise ConfigError(f"{where}: unsupported setting type {hints!r}")
    try:
        return parse(value)
    except (ValueError, ConfigError) as exc:
        raise ConfigError(f"{where}: {str(exc).removeprefix('value: ')}") from None


def _section_from(name: str, raw: Mapping[str, Any], where: str, overrides: Mapping[str, str]) -> Any:
    section_type = SECTIONS[name]
    known = _fields(section_type)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "password" or key == "secret_key":
            var = f"{ENV_PREFIX}SECRET_KEY"
            if key == "password":
                var = f"{ENV_PREFIX}{'BOUNCES' if name == 'bounces' else 'SMTP'}_PASSWORD"
            raise ConfigError(f"{where}: [{name}] {key}: secrets are not read from files; remove it and set {var}")
        if key not in known:
            raise ConfigError(f"{where}: unknown key [{name}] {key}; known keys: {', '.join(sorted(known))}")
        attr, hints = known[key]
        values[attr] = _coerce(f"{where}: [{name}] {key}", hints, value, from_env=False)
    for key, value in overrides.items():
        attr, hints = known[key]
        var = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        values[attr] = _coerce(f"environment variable {var}", hints, value, from_env=True)
    return section_type(**values)


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """NEWSLETTER_<SECTION>_<KEY> variables, grouped by section; unknown ones are errors."""
    result: dict[str, dict[str, str]] = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var in SECRET_VARIABLES or var == "NEWSLETTER_CONFIG":
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        for section in SECTIONS:
            if rest.startswith(section + "_") and rest[len(section) + 1 :] in _fields(SECTIONS[section]):
                result.setdefault(section, {})[rest[len(section) + 1 :]] = value
                break
        else:
            raise ConfigError(
                f"environment variable {var} is not a setting; "
                f"use NEWSLETTER_<SECTION>_<KEY>, e.g. NEWSLETTER_SMTP_HOST, or unset it"
            )
    return result


def _read(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; create it with `newsletter init` or drop --config") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:1024]:
        raise ConfigError(f"{path}:1: the file is UTF-16 (Notepad's \"Unicode\"); save it as UTF-8")
    try:
        text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")  # a byte-order mark is harmless
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start]
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{byte:02X}); save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}; fix the syntax at that line") from None


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the configuration.

    `path` is an explicit --config (must exist); otherwise ./newsletter.toml is used when
    present and the built-in defaults when not, so a fresh clone runs with no setup.
    """
    env = os.environ if env is None else env
    if path is None and env.get("NEWSLETTER_CONFIG"):
        path = Path(env["NEWSLETTER_CONFIG"])
    explicit = path is not None
    if path is None:
        path = Path(CONFIG_NAME)
    raw: dict[str, Any] = {}
    source: Path | None = None
    if path.is_file() or explicit:
        raw = _read(path)
        source = path
    where = str(path)
    unknown_sections = sorted(set(raw) - set(SECTIONS))
    if unknown_sections:
        raise ConfigError(f"{where}: unknown section [{unknown_sections[0]}]; known sections: {', '.join(SECTIONS)}")
    overrides = _env_overrides(env)
    sections: dict[str, Any] = {}
    for name in SECTIONS:
        raw_section = raw.get(name, {})
        if not isinstance(raw_section, dict):
            raise ConfigError(f"{where}: {name} must be a [{name}] table, not a value")
        sections[name] = _section_from(name, raw_section, where, overrides.get(name, {}))
    config = Config(
        **sections,
        root=(path.parent if source else Path(".")),
        source=source,
        smtp_password=env.get("NEWSLETTER_SMTP_PASSWORD", ""),
        secret_key=env.get("NEWSLETTER_SECRET_KEY", ""),
        bounces_password=env.get("NEWSLETTER_BOUNCES_PASSWORD", ""),
    )
    state_from_file = "state" in raw.get("paths", {}) and "state" not in overrides.get("paths", {})
    from_env = {(section, key) for section, keys in overrides.items() for key in keys}
    validate(config, Keys(where, from_env), state_from_file=state_from_file)
    return config
