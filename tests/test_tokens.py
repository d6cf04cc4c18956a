"""Tokens in links are strict: one spelling each, AES-SIV underneath, every altered form refused.

Unsubscribe and signup-confirmation tokens (render/tokens.py) and VERP tokens (send/verp.py). The
release-0.1 tokens below were made by that release's code: links in emails sent then keep working.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Callable, Iterator

import pytest

from newsletter.render.confirm_token import Signup, make_confirm_token, read_confirm_token
from newsletter.render.tokens import decode_strict
from newsletter.render.unsubscribe import make_token, read_token
from newsletter.send.verp import Verp

SECRET = "k" * 40
LIST = "privacy-notes.example.com"
ALPHABET = string.ascii_letters + string.digits + "-_"
# Made by release 0.1 (HMAC-SHA256 tag + SHAKE-256 keystream) for SECRET, LIST and ada@example.com...
OLD_UNSUBSCRIBE = "Ms9gsqbYuA1f9ChD9cxBsQhJNtoBxn_drSOeGV_WEtt_ix6UTOFgHNCoSJYlWX5oN6loYiyZHQAZvZNyIfg7"
# ...and for new@example.org's signup at 2026-11-20 08:00 UTC.
OLD_CONFIRM = (
    "vWVECYkDK72HZfI9K_sGW-XBRR2u6waSogUKdun-9mm9KpUkgmbVPOHNxlCwVlIfVVaL0AjZx8Cif15xD8YXqWXXDJAjBfhaaWu_hd23iWT6"
    "aHJXO3K7vg3WwVPhrW10kzc_YQWk"
)
SIGNED_UP = dt.datetime(2026, 11, 20, 8, 0)
SIGNUP = Signup(LIST, "new@example.org", "New Reader", "New", SIGNED_UP, "c0ffee")


def altered(token: str) -> Iterator[str]:
    """Every small change a person, a mail client or an attacker could make to a token."""
    for i, char in enumerate(token):
        for other in ALPHABET:
            if other != char:
                yield token[:i] + other + token[i + 1 :]  # any character changed (the last: other trailing bits)
        yield token[:i] + token[i + 1 :]  # any character dropped
        for inserted in ("!", "*", "~", ".", "=", "%00", "\x00", " ", "A"):
            yield token[:i] + inserted + token[i:]
    for suffix in ("=", "==", "!!", "%00", "\x00", "\n", " ", "A", "AA", "AAA", "AAAA"):
        yield token + suffix
    yield token.upper()
    yield token.lower()
    yield token[::-1]
    yield ""


def test_unsubscribe_tokens_round_trip_and_hide_the_address() -> None:
    token = make_token(SECRET, LIST, "Ada@Example.com")
    assert read_token(SECRET, token) == (LIST, "ada@example.com")
    assert token == make_token(SECRET, LIST, "ada@example.com")  # the same link every time
    assert token != OLD_UNSUBSCRIBE  # written with AES-SIV now
    assert "ada" not in token.lower()
    assert read_token("another-secret-of-enough-length", token) is None


@pytest.mark.parametrize("token", [make_token(SECRET, LIST, "ada@example.com"), OLD_UNSUBSCRIBE], ids=["new", "0.1"])
def test_every_altered_unsubscribe_token_is_refused(token: str) -> None:
    assert read_token(SECRET, token) == (LIST, "ada@example.com")
    accepted = [variant for variant in altered(token) if read_token(SECRET, variant) is not None]
    assert accepted == []


def test_a_release_0_1_unsubscribe_link_still_works() -> None:
    assert read_token(SECRET, OLD_UNSUBSCRIBE) == (LIST, "ada@example.com")


@pytest.mark.parametrize(
    ("make", "read"),
    [
        (lambda: make_confirm_token(SECRET, SIGNUP), lambda t: read_confirm_token(SECRET, t, dt.timedelta(days=7), SIGNED_UP)[0] == "ok"),
        (lambda: OLD_CONFIRM, lambda t: read_confirm_token(SECRET, t, dt.timedelta(days=7), SIGNED_UP)[0] == "ok"),
    ],
    ids=["new", "0.1"],
)
def test_every_altered_confirmation_token_is_refused(make: Callable[[], str], read: Callable[[str], bool]) -> None:
    token = make()
    assert read(token)
    assert [variant for variant in altered(token) if read(variant)] == []


def test_a_pending_release_0_1_confirmation_link_still_works() -> None:
    state, signup = read_confirm_token(SECRET, OLD_CONFIRM, dt.timedelta(days=7), SIGNED_UP + dt.timedelta(days=1))
    assert state == "ok" and signup == SIGNUP


def test_one_kind_of_token_never_opens_as_another() -> None:
    unsubscribe = make_token(SECRET, LIST, "new@example.org")
    confirm = make_confirm_token(SECRET, SIGNUP)
    assert read_confirm_token(SECRET, unsubscribe, dt.timedelta(days=7), SIGNED_UP)[0] == "invalid"
    assert read_token(SECRET, confirm) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("QUJD", b"ABC"),
        ("QUI", b"AB"),
        ("AA", b"\x00"),
        ("QUJ", None),  # J leaves a trailing bit set: another spelling of "QUI" (b"AB")
        ("AB", None),
        ("QUI=", None),
        ("QUJD==", None),
        ("QUJDR", None),  # a length no base64 text has
        ("QU!I", None),
        ("QUI\n", None),
        ("QU+I", None),  # the other alphabet
        ("", None),
    ],
)
def test_only_canonical_base64url_decodes(text: str, expected: bytes | None) -> None:
    assert decode_strict(text) == expected


def test_verp_tokens_have_one_spelling() -> None:
    verp = Verp("bounces@example.com", SECRET)
    address = verp.list_sender(26, 4095, "ada@example.com")
    token = verp.token_in(address)
    assert token is not None and token.startswith("1a-fff-")
    parsed = Verp.parse(token)
    assert parsed is not None and verp.verify(parsed, "ada@example.com")
    head, number, mac = token.split("-")
    for variant in (f"01a-{number}-{mac}", f"{head}-0fff-{mac}", f"{head}-{number}-0{mac}", f"{head}-{number}-{mac}0",
                    f"{head}--{number}-{mac}", f"{head}-{number}-{mac[:-1]}", f" {token}", f"{head}-+fff-{mac}"):
        found = Verp.parse(variant)
        assert found is None or not verp.verify(found, "ada@example.com"), variant
    # MTAs may change the case of a local part: that alone is still the same token.
    upper = Verp.parse(token.upper())
    assert upper is not None and verp.verify(upper, "ada@example.com")
