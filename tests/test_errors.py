"""Bad input: one clear line naming the file, line or key; exit status 2; never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.content.articles import load_article
from newsletter.content.issue import issue_for
from newsletter.content.subscribers import Subscriber
from newsletter.errors import HeaderInjectionError
from newsletter.render.issue import render_issue
from newsletter.render.mime import MessageFactory

from .helpers import Cli, write_article
from .smtpd import SmtpServer


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("---\ndate: 2026-12-01\n---\nbody\n", "front matter has no title"),
        ("---\ntitle: T\n---\nbody\n", "front matter has no date"),
        ("---\ntitle: T\ndate: 2026-13-45\n---\nbody\n", "date: '2026-13-45' is not a date"),
        ("---\ntitle: T\ndate: tomorrow\n---\nbody\n", "date: 'tomorrow' is not a date"),
        ("---\ntitle: [unclosed\ndate: 2026-12-01\n---\nbody\n", "front matter is not valid YAML"),
        ("no front matter here\n", ":1: no front matter"),
        ("---\ntitle: T\ndate: 2026-12-01\ndraft: maybe\n---\nbody\n", "draft: expected true or false"),
    ],
)
def test_bad_front_matter_names_the_file(cli: Cli, folder: Path, text: str, expected: str) -> None:
    write_article(folder, "2026-12-01-bad.md", text)
    result = cli.subprocess("render", "2026-12-01-bad")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("newsletter: error: issues/2026-12-01-bad.md")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_yaml_error_names_the_line(cli: Cli, folder: Path) -> None:
    write_article(folder, "2026-12-01-bad.md", "---\ntitle: ok\ndate: 2026-12-01\nsummary: : :\n  - x\n---\n")
    result = cli("render", "2026-12-01-bad")
    assert "issues/2026-12-01-bad.md:" in result.stderr and "not valid YAML" in result.stderr


def test_non_utf8_article(cli: Cli, folder: Path) -> None:
    (folder / "issues" / "2026-12-01-latin1.md").write_bytes(b"---\ntitle: Caf\xe9\ndate: 2026-12-01\n---\n")
    result = cli("render", "2026-12-01-latin1")
    assert result.exit_code == 2 and "not UTF-8" in result.stderr and ":2:" in result.stderr


@pytest.mark.e2e
def test_missing_template_variable_names_the_template(cli: Cli, folder: Path) -> None:
    email_html = folder / "templates" / "email.html"
    lines = email_html.read_text().splitlines()
    lines.insert(3, "<p>{{ article.no_such_key }}</p>")
    email_html.write_text("\n".join(lines))
    result = cli.subprocess("render", "latest")
    assert result.returncode == 2
    assert "templates/email.html:4" in result.stderr
    assert "no_such_key" in result.stderr
    assert "Traceback" not in result.stderr


def test_template_syntax_error(cli: Cli, folder: Path) -> None:
    (folder / "templates" / "email.txt").write_text("{% if %}\n")
    result = cli("render", "latest")
    assert result.exit_code == 2 and "email.txt:1" in result.stderr


def test_unknown_subscriber_column_fails_loudly(cli: Cli, folder: Path) -> None:
    email_html = folder / "templates" / "email.html"
    email_html.write_text(email_html.read_text().replace("{{ body_html }}", "{{ subscriber.plan }}{{ body_html }}"))
    result = cli("render", "latest")
    assert result.exit_code == 2
    assert "subscriber has no column 'plan'" in result.stderr and "email.html" in result.stderr


@pytest.mark.parametrize(
    "filtered",
    ["subscriber.name | default('there') | title", "subscriber.email | upper", "unsubscribe_url | truncate(10)"],
)
def test_a_filter_on_a_personal_value_fails_loudly(cli: Cli, folder: Path, filtered: str) -> None:
    """Such a value is filled in after rendering: a filter would leave a raw marker in every email."""
    email_html = folder / "templates" / "email.html"
    email_html.write_text(email_html.read_text().replace("{{ body_html }}", "{{ " + filtered + " }}{{ body_html }}"))
    result = cli("render", "latest")
    assert result.exit_code == 2
    assert "email.html" in result.stderr and "filled in per subscriber after rendering" in result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[smtp]\nhots = 'x'\n", "unknown key [smtp] hots"),
        ("[smtp]\nport = 'twenty-five'\n", "[smtp] port: expected a number"),
        ("[delivery]\nbackend = 'carrier-pigeon'\n", "[delivery] backend: 'carrier-pigeon' is not one of"),
        (
            "[smtp]\npassword = 'hunter2'\n",
            "secrets are not read from files; remove it and set NEWSLETTER_SMTP_PASSWORD",
        ),
        ("[smtpp]\nhost = 'x'\n", "unknown section [smtpp]"),
        ("[smtp\n", "not valid TOML"),
        ("[newsletter]\nfrom = 'nobody'\n", "[newsletter] from: 'nobody' is not an address"),
        ('[newsletter]\nname = "Notes\\nBcc: victim@example.com"\n', "[newsletter] name: contains a line break"),
        (
            "[newsletter]\nbase_url = 'https://exämple.org'\n",
            "[newsletter] base_url: 'https://exämple.org' must be plain ASCII",
        ),
        ("[newsletter]\nbase_url = 'https://example.org/a b'\n", "must be plain ASCII without spaces"),
        ("[serve]\nport = 70000\n", "[serve] port: 70000 is not a TCP port"),
    ],
)
def test_bad_config(cli: Cli, folder: Path, toml: str, expected: str) -> None:
    (folder / "newsletter.toml").write_text(toml)
    result = cli.subprocess("render", "latest")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "newsletter.toml" in result.stderr and expected in result.stderr


def test_bad_environment_override(cli: Cli) -> None:
    cli.env["NEWSLETTER_SMTP_PORT"] = "abc"
    result = cli("render", "latest")
    assert result.exit_code == 2
    assert "environment variable NEWSLETTER_SMTP_PORT: 'abc' is not a number" in result.stderr
    cli.env.clear()
    cli.env["NEWSLETTER_SMTP_HOTS"] = "x"
    assert "NEWSLETTER_SMTP_HOTS is not a setting" in cli("render", "latest").stderr


def test_missing_config_file(cli: Cli) -> None:
    result = cli("--config", "nope.toml", "render", "latest")
    assert result.exit_code == 2 and "nope.toml: config file not found" in result.stderr


class TestHeaderInjection:
    """A CR or LF from any input never reaches a header."""

    def test_title_with_newline(self, cli: Cli, folder: Path, smtp_server: SmtpServer) -> None:
        cli.env.update(smtp_server.env())
        write_article(
            folder, "2026-12-01-evil.md", '---\ntitle: "Hi\\r\\nBcc: victim@example.com"\ndate: 2026-12-01\n---\nx\n'
        )
        result = cli("send-test", "2026-12-01-evil", "--to", "a@example.com")
        assert result.exit_code == 2
        assert "issues/2026-12-01-evil.md: subject: contains a line break" in result.stderr
        assert smtp_server.handler.received == []

    def test_subject_with_newline(self, cli: Cli, folder: Path) -> None:
        write_article(
            folder, "2026-12-01-evil.md", '---\ntitle: ok\nsubject: "a\\nX-Evil: 1"\ndate: 2026-12-01\n---\nx\n'
        )
        result = cli("render", "2026-12-01-evil")
        assert result.exit_code == 2 and "subject: contains a line break" in result.stderr

    def test_subscriber_name_with_newline(self, cli: Cli, folder: Path) -> None:
        (folder / "subscribers.example.csv").write_text(
            'email,name\nx@example.com,"Eve\r\nBcc: victim@example.com"\n', encoding="utf-8"
        )
        check = cli("subscribers", "check")
        assert check.exit_code == 1 and "subscribers.example.csv:2: name contains a line break" in check.output
        render = cli("render", "latest")  # the invalid row is never used, not even as the sample
        assert render.exit_code == 0 and b"victim" not in next((folder / "build").glob("*.eml")).read_bytes()

    def test_message_factory_refuses_a_name_with_newline(self, folder: Path) -> None:
        """The backstop for recipients that do not come from the validated list."""
        config = load_config(folder / "newsletter.toml", env={})
        rendered = render_issue(issue_for(load_article(folder / "issues" / "2026-11-23-welcome.md")), config)
        with pytest.raises(HeaderInjectionError, match="name: contains a line break"):
            MessageFactory(rendered, config).build(Subscriber.of("x@example.com", "Eve\r\nBcc: v@example.com"))

    def test_non_ascii_local_part_is_refused_cleanly(self, cli: Cli) -> None:
        result = cli("send-test", "latest", "--to", "jörg@example.com")
        assert result.exit_code == 2 and "--to: 'jörg@example.com' is not a valid email address" in result.stderr

    def test_address_with_newline(self, cli: Cli) -> None:
        result = cli("send-test", "latest", "--to", "a@example.com\r\nBcc: victim@example.com")
        assert result.exit_code == 2 and "line break" in result.stderr

    def test_from_with_newline_in_env(self, cli: Cli) -> None:
        cli.env["NEWSLETTER_NEWSLETTER_FROM"] = "A <a@example.com>\nBcc: b@example.com"
        assert cli("render", "latest").exit_code == 2
