"""Languages: the theme's fixed strings from gettext catalogs, dates and numbers from Babel.

`[newsletter] language` is a BCP 47 tag (`en`, `de`, `fr`, `en-GB`). The catalogs ship in the package
(`render/locales/<language>/LC_MESSAGES/newsletter.po` and the compiled `.mo`); a regional tag falls
back to its language's catalog (`de-AT` uses `de`), a language without a catalog to the English
source strings. Babel's CLDR data knows every language, so dates are right even without a catalog.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from jinja2 import Environment

from ..config import Config
from ..errors import ConfigError

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "newsletter"


def locale_for(config: Config) -> Locale:
    """The Babel locale of `[newsletter] language`; a tag Babel does not know is a one-line error."""
    return parse_language(config.newsletter.language, config.where)


@functools.cache
def parse_language(tag: str, where: str = "newsletter.toml") -> Locale:
    try:
        return Locale.parse(tag.strip().replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        raise ConfigError(
            f"{where}: [newsletter] language: {tag!r} is not a language tag Babel knows; "
            f"use a BCP 47 tag such as en, de, fr or en-GB"
        ) from None


@functools.cache
def translations(locale: Locale) -> NullTranslations:
    """The theme's catalog for `locale` (en_GB falls back to en), or the source strings."""
    return Translations.load(str(LOCALES), [str(locale), locale.language], DOMAIN)


def catalog_languages() -> list[str]:
    """Languages with a compiled catalog in the package."""
    return sorted(p.parent.parent.name for p in LOCALES.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))


def date_filter(locale: Locale) -> Callable[..., str]:
    """`{{ d | date }}` (the language's long date), `date("medium")`, a Babel pattern, or a strftime format."""

    def date(value: dt.date | dt.datetime, fmt: str = "long") -> str:
        if "%" in fmt:
            return value.strftime(fmt)
        day = value.date() if isinstance(value, dt.datetime) else value
        return format_date(day, fmt, locale=locale)  # short|medium|long|full or a pattern like 'd MMM y'

    return date


def number_filter(locale: Locale) -> Callable[..., str]:
    """`{{ n | number }}`: 1,204 in English, 1.204 in German, 1 204 in French."""

    def number(value: int | float) -> str:
        return format_decimal(value, locale=locale)

    return number


def install(env: Environment, locale: Locale) -> None:
    """Give a Jinja environment `_()`, `ngettext()`, `{% trans %}` and the `date`/`number` filters of `locale`."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["date"] = date_filter(locale)
    env.filters["number"] = number_filter(locale)
    env.globals["language"] = str(locale).replace("_", "-")
