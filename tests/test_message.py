"""The prepared-bytes message path against the stdlib parser: what it decodes is what we meant."""

from __future__ import annotations

import email
import email.policy
import random
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.content.articles import load_article
from newsletter.content.issue import issue_for
from newsletter.content.subscribers import Subscriber
from newsletter.render.issue import render_issue
from newsletter.render.mime import MessageFactory

TRICKY = ["", " ", "Ada", "Renée Ça Va 🙂", "a=b", "x" * 200, "=3D", ".", "line\tTab ", 'O\'Hara & "Co" <b>']


@pytest.mark.parametrize("seed", range(6))
def test_encoded_parts_decode_to_the_personalized_text(folder: Path, seed: int) -> None:
    rng = random.Random(seed)
    columns = ["city", "plan"]
    template = folder / "templates" / "email.txt"
    # A text template dense with markers, long lines, trailing spaces and lines starting with a dot.
    template.write_text(
        "{{ subscriber.name }}{{ subscriber.city }} =start\n"
        + ". dot line {{ subscriber.plan }}\n"
        + ("long " * 40 + "{{ subscriber.name | default('there') }} tail   \n") * 3
        + "{{ body_text }}\n{{ unsubscribe_url }}\n"
    )
    config = load_config(folder / "newsletter.toml", env={})
    article = load_article(folder / "issues" / "2026-11-09-tls-certificates.md")
    rendered = render_issue(issue_for(article), config, columns)
    factory = MessageFactory(rendered, config, message_key="k")
    for _ in range(20):
        fields = {
            "email": "x@example.com",
            "name": rng.choice(TRICKY),
            "city": rng.choice(TRICKY),
            "plan": rng.choice(TRICKY),
        }
        subscriber = Subscriber(email="x@example.com", name=fields["name"].strip(), fields=fields)
        raw = factory.build(subscriber)
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        html, text = rendered.personalize(fields, factory.unsubscriber.links("x@example.com").url)
        plain_part, html_part = msg.iter_parts()
        assert plain_part.get_content().replace("\r\n", "\n").rstrip("\n") == text.rstrip("\n")
        assert html_part.get_content().replace("\r\n", "\n").rstrip("\n") == html.rstrip("\n")
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_message_ids_are_stable_per_campaign_and_address(folder: Path) -> None:
    config = load_config(folder / "newsletter.toml", env={})
    rendered = render_issue(issue_for(load_article(folder / "issues" / "2026-11-23-welcome.md")), config)
    a = MessageFactory(rendered, config, message_key="welcome:1")
    b = MessageFactory(rendered, config, message_key="welcome:1")
    assert a.message_id("Ada@example.com") == b.message_id("ada@example.com")
    assert a.message_id("ada@example.com") != a.message_id("bob@example.com")
    test = MessageFactory(rendered, config)
    assert test.message_id("ada@example.com") != test.message_id("ada@example.com")


def test_non_ascii_name_is_encoded_in_to(folder: Path) -> None:
    config = load_config(folder / "newsletter.toml", env={})
    rendered = render_issue(issue_for(load_article(folder / "issues" / "2026-11-23-welcome.md")), config)
    raw = MessageFactory(rendered, config).build(Subscriber.of("r@example.net", "Renée Ça Va"))
    assert b"To: =?utf-8?" in raw
    assert email.message_from_bytes(raw, policy=email.policy.default)["To"] == "Renée Ça Va <r@example.net>"
