"""The shipped catalogs: every fixed string of the themes translated, placeholders intact, .mo compiled from .po."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from newsletter.render.i18n import LOCALES, catalog_languages

REPO = Path(__file__).resolve().parent.parent


def used_strings() -> set[str | tuple[str, str]]:
    """What the templates and the web code ask to translate, extracted as `pybabel extract` does."""
    with open(REPO / "babel.cfg", encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(REPO, method_map, options_map):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def test_english_german_and_french_ship() -> None:
    assert set(catalog_languages()) >= {"en", "de", "fr"}


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_every_string_is_translated_with_its_placeholders(language: str) -> None:
    with open(LOCALES / language / "LC_MESSAGES" / "newsletter.po", "rb") as f:
        catalog = read_po(f, locale=language)
    ids = {m.id if isinstance(m.id, str) else (m.id[0], m.id[1]) for m in catalog if m.id}
    missing = used_strings() - ids
    assert not missing, f"not in {language}'s catalog (run pybabel update, README: Languages): {missing}"
    for message in catalog:
        if message.id:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(strings), f"{language}: untranslated {message.id!r}"
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert not problems, problems  # python-format placeholders kept


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_compiled_catalog_is_the_po_file(language: str) -> None:
    folder = LOCALES / language / "LC_MESSAGES"
    with open(folder / "newsletter.po", "rb") as f:
        catalog = read_po(f, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    with open(folder / "newsletter.mo", "rb") as f:
        shipped = read_mo(f)
    compiled.seek(0)
    fresh = read_mo(compiled)

    def table(catalog: Catalog) -> dict[object, object]:
        return {_key(m.id): _key(m.string) for m in catalog}

    assert table(shipped) == table(fresh), (
        f"{folder}/newsletter.mo is older than the .po: run pybabel compile (README: Languages)"
    )
