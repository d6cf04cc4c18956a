"""Headers at any length: folded within RFC 5322's limits, encoded words within RFC 2047's, read back intact."""

from __future__ import annotations

import email
import email.policy
import random
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.content.articles import load_article
from newsletter.content.issue import issue_for
from newsletter.content.subscribers import Subscriber
from newsletter.errors import HeaderInjectionError
from newsletter.render.headers import encoded_words, fold, fold_address
from newsletter.render.issue import render_issue
from newsletter.render.mime import MessageFactory

from .helpers import write_article

ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=")
NAMES = [
    "Ä" * 400,
    "Ada Lovelace",
    "Lovelace, Ada",
    'Ada "the Countess" Lovelace',
    "Back\\slash",
    "Renée Dupont-Lefèvre de la Tour d'Auvergne " * 6,
    "李小龍" * 50,
    "😀 emoji 🎉" * 20,
    "=?utf-8?q?not_encoded?=",
    "a" * 300,
]
SUBJECTS = [
    "Wie TLS-Zertifikate wirklich geprüft werden: Ketten, Widerruf, OCSP-Stapling und was Browser tatsächlich tun",
    "Überall Zertifikate " * 12,
    "How TLS certificates really get checked: chains, revocation, OCSP stapling and what browsers do in practice",
    "短い",
    "x" * 120,
]


def _check_lines(header_block: bytes) -> None:
    for line in header_block.split(b"\r\n"):
        assert len(line) <= 998
        for word in ENCODED_WORD.findall(line):
            assert len(word) <= 75, word


def _message(folder: Path, subject: str, subscriber: Subscriber) -> tuple[bytes, EmailMessage]:
    path = write_article(
        folder, "2026-11-20-h.md", f"---\ntitle: T\nsubject: {subject!r}\ndate: 2026-11-20\n---\nBody.\n"
    )
    config = load_config(folder / "newsletter.toml", env={})
    data = MessageFactory(render_issue(issue_for(load_article(path)), config), config).build(subscriber)
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return data, parsed


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_any_display_name_folds_within_limits_and_reads_back(folder: Path, name: str) -> None:
    data, message = _message(folder, "Hello", Subscriber.of("ada@example.com", name))
    head = data.split(b"\r\n\r\n", 1)[0]
    _check_lines(head)
    to = head.split(b"\r\nTo: ", 1)[1].split(b"\r\nMessage-ID:", 1)[0]
    assert all(len(line) <= 78 for line in (b"To: " + to).split(b"\r\n")) or (len(name) > 200 and name == "a" * 300)
    # Decoded as RFC 2047 says (white space between encoded words is not part of the text), the
    # way mail clients read it; Python's own address parser keeps that white space.
    display, addr = email.utils.getaddresses([email.message_from_bytes(data)["To"]])[0]
    assert str(email.header.make_header(email.header.decode_header(display))) == name
    assert addr == "ada@example.com" and message["To"].addresses[0].addr_spec == "ada@example.com"


@pytest.mark.parametrize("subject", SUBJECTS, ids=range(len(SUBJECTS)))
def test_long_subjects_fold_without_an_empty_first_line(folder: Path, subject: str) -> None:
    data, message = _message(folder, subject, Subscriber.of("ada@example.com", "Ada"))
    head = data.split(b"\r\n\r\n", 1)[0]
    _check_lines(head)
    first = head.split(b"\r\nSubject:", 1)[1].split(b"\r\n", 1)[0]
    assert first.strip(), "Subject: with an empty first line"
    assert message["Subject"] == " ".join(subject.split())


def test_encoded_words_never_exceed_75_characters_nor_split_a_character() -> None:
    rng = random.Random(7)
    alphabet = "abc XYZ äöü ß é ñ 李 小 龍 😀 🎉 _ = ? . , ; : \" ' ( ) < >"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 250)))
        words = encoded_words(text, room=rng.randint(20, 75))
        assert all(len(w) <= 75 for w in words)
        decoded = email.header.make_header(email.header.decode_header(" ".join(words)))
        assert str(decoded) == text


def test_list_unsubscribe_stays_one_raw_line_and_line_breaks_are_refused(folder: Path) -> None:
    config = load_config(
        folder / "newsletter.toml",
        env={"NEWSLETTER_NEWSLETTER_BASE_URL": "https://news.example.org", "NEWSLETTER_SECRET_KEY": "k" * 32},
    )
    path = write_article(folder, "2026-11-20-h.md", "---\ntitle: T\ndate: 2026-11-20\n---\nBody.\n")
    data = MessageFactory(render_issue(issue_for(load_article(path)), config), config).build(
        Subscriber.of("a" * 60 + "@example.com", "Ä" * 300)
    )
    line = next(x for x in data.split(b"\r\n") if x.startswith(b"List-Unsubscribe: "))
    assert line.startswith(b"List-Unsubscribe: <https://news.example.org/unsubscribe/") and len(line) <= 998
    with pytest.raises(HeaderInjectionError):
        fold("Subject", "a\r\nBcc: victim@example.com")
    with pytest.raises(HeaderInjectionError):
        fold_address("To", "Ada\nBcc: x@example.com", "ada@example.com")
