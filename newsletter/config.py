"""Typed configuration: built-in defaults < newsletter.toml < NEWSLETTER_<SECTION>_<KEY> variables.

Validated once at start-up so that every later step can trust it; each error names the key
(or variable, or file) and says what to do.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

CONFIG_NAME = "newsletter.toml"
ENV_PREFIX = "NEWSLETTER_"
# Secrets are never read from files (they would end up in the repository).
SECRET_VARIABLES = {"NEWSLETTER_SMTP_PASSWORD", "NEWSLETTER_SECRET_KEY"}


@dataclass(frozen=True)
class NewsletterSection:
    name: str = "Privacy Notes"
    # "Display Name <address>" or a bare address.
    from_: str = "Privacy Notes <newsletter@example.com>"
    reply_to: str = ""
    base_url: str = ""
    postal_address: str = "Privacy Notes, 1 Example Street, 10115 Berlin, Germany"
    language: str = "en"
    # Defaults to "<slug of name>.<domain of from>"; RFC 2919.
    list_id: str = ""
    # Optional mailto: for List-Unsubscribe in addition to the HTTPS one-click URL.
    unsubscribe_mailto: str = ""
    # The subscriber shown in previews and written to the sample .eml.
    sample_email: str = ""
    sample_name: str = "Ada Reader"

    @property
    def from_address(self) -> str:
        return parseaddr(self.from_)[1]

    @property
    def from_name(self) -> str:
        return parseaddr(self.from_)[0]

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2]


@dataclass(frozen=True)
class PathsSection:
    issues: Path = Path("issues")
    templates: Path = Path("templates")
    subscribers: Path = Path("subscribers.csv")
    state: Path = Path("newsletter.db")
    outbox: Path = Path("outbox")
    build: Path = Path("build")


@dataclass(frozen=True)
class DeliverySection:
    backend: Literal["outbox", "smtp"] = "outbox"


@dataclass(frozen=True)
class SmtpSection:
    host: str = "localhost"
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    timeout: float = 30.0
    # Sending-engine knobs (used by `newsletter send`).
    connections: int = 4
    rate: float = 0.0
    max_per_hour: int = 0
    max_attempts: int = 5
    retry_base_delay: float = 2.0
    max_failure_ratio: float = 0.5
    failure_ratio_min_sample: int = 20


@dataclass(frozen=True)
class ScheduleSection:
    cron: str = "0 9 * * mon"
    timezone: str = ""
    catch_up: str = "12h"
    skip_if_empty: bool = True
    subject: str = "{{ newsletter.name }}: week {{ week }}"
    lookback: str = "7d"
    content: Literal["summary", "full"] = "summary"


@dataclass(frozen=True)
class PreviewSection:
    host: str = "127.0.0.1"
    port: int = 8025


@dataclass(frozen=True)
class ServeSection:
    host: str = "127.0.0.1"
    port: int = 8000
    # Proxies whose X-Forwarded-For/-Proto are trusted (uvicorn's forwarded_allow_ips): the reverse proxy.
    forwarded_allow_ips: str = "127.0.0.1"


@dataclass(frozen=True)
class Config:
    newsletter: NewsletterSection = field(default_factory=NewsletterSection)
    paths: PathsSection = field(default_factory=PathsSection)
    delivery: DeliverySection = field(default_factory=DeliverySection)
    smtp: SmtpSection = field(default_factory=SmtpSection)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    preview: PreviewSection = field(default_factory=PreviewSection)
    serve: ServeSection = field(default_factory=ServeSection)
    # Folder that relative paths are resolved against (the config file's folder).
    root: Path = Path(".")
    # The file it came from, or None when running on built-in defaults.
    source: Path | None = None
    smtp_password: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)

    def path(self, name: str) -> Path:
        """An entry of [paths], resolved against the config file's folder."""
        value: Path = getattr(self.paths, name)
        return value if value.is_absolute() else self.root / value


SECTIONS: dict[str, type] = {
    "newsletter": NewsletterSection,
    "paths": PathsSection,
    "delivery": DeliverySection,
    "smtp": SmtpSection,
    "schedule": ScheduleSection,
    "preview": PreviewSection,
    "serve": ServeSection,
}


def _fields(section_type: type) -> dict[str, tuple[str, Any]]:
    """TOML key -> (dataclass attribute, type); `from_` is spelled `from` in the file."""
    hints = typing.get_type_hints(section_type)
    return {f.name.rstrip("_"): (f.name, hints[f.name]) for f in dataclasses.fields(section_type)}


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
                return hints(value)
            except ValueError:
                raise ConfigError(f"{where}: {value!r} is not a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if hints is int and not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return hints(value)
    if hints is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: expected a path as a non-empty string, got {value!r}")
        return Path(value)
    if hints is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string (in quotes), got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported setting type {hints!r}")  # pragma: no cover


def _section_from(name: str, raw: Mapping[str, Any], where: str, overrides: Mapping[str, str]) -> Any:
    section_type = SECTIONS[name]
    known = _fields(section_type)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "password" or key == "secret_key":
            var = f"{ENV_PREFIX}SMTP_PASSWORD" if key == "password" else f"{ENV_PREFIX}SECRET_KEY"
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
        try:
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(
                f"{path}: config file not found; create it with `newsletter init` or drop --config"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}; fix the syntax at that line") from None
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
    )
    _validate(config, where)
    return config


def _validate(config: Config, where: str) -> None:
    """Cross-field checks that types alone cannot express."""
    nl = config.newsletter
    if "@" not in nl.from_address or any(c in nl.from_ for c in "\r\n"):
        raise ConfigError(
            f'{where}: [newsletter] from: {nl.from_!r} is not an address; use "Name <you@yourdomain.org>"'
        )
    if nl.base_url and not nl.base_url.startswith(("https://", "http://")):
        raise ConfigError(f"{where}: [newsletter] base_url: {nl.base_url!r} must start with https://")
    # These reach headers (From, List-Id, Reply-To, List-Unsubscribe, Message-ID) as they are.
    for key in ("name", "from_", "reply_to", "list_id", "unsubscribe_mailto", "base_url"):
        value: str = getattr(nl, key)
        if "\r" in value or "\n" in value:
            raise ConfigError(f"{where}: [newsletter] {key.rstrip('_')}: contains a line break; remove it")
    for key, value in (
        ("base_url", nl.base_url),
        ("unsubscribe_mailto", nl.unsubscribe_mailto),
        ("list_id", nl.list_id),
        ("from", nl.from_address),
    ):
        if value and (not value.isascii() or any(c.isspace() for c in value)):
            raise ConfigError(
                f"{where}: [newsletter] {key}: {value!r} must be plain ASCII without spaces; write an international "
                f"domain in its xn-- form and percent-encode other characters"
            )
    for section, port in (("smtp", config.smtp.port), ("preview", config.preview.port), ("serve", config.serve.port)):
        if not 1 <= port <= 65535:
            raise ConfigError(f"{where}: [{section}] port: {port} is not a TCP port (1-65535)")
    if config.smtp.connections < 1:
        raise ConfigError(f"{where}: [smtp] connections: must be at least 1")
    if config.smtp.rate < 0 or config.smtp.max_per_hour < 0:
        raise ConfigError(f"{where}: [smtp] rate and max_per_hour must be 0 (unlimited) or more")
    if config.smtp.max_attempts < 1:
        raise ConfigError(f"{where}: [smtp] max_attempts: must be at least 1")
    if not 0 < config.smtp.max_failure_ratio <= 1:
        raise ConfigError(f"{where}: [smtp] max_failure_ratio: must be above 0 and at most 1")
