"""Every bad input is one line naming the file, key or line, what is wrong and what to do, with its exit status.

One parametrized test per kind of input: the configuration, articles, the command line and the
subscriber list. Each case asserts the exact line on stderr (or the report line of `subscribers
check`) and the status, in-process; the inputs that need a process of their own (a full disk, memory)
are in test_disk_full.py and below.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import Cli, write_article

TLS = "2026-11-09-tls-certificates"
SUBJECT_VARIABLES = "newsletter, period_label, week, year, period, period_start, period_end, run, articles"
ONE_ADDRESS = 'write one address like "Name <you@yourdomain.org>"'


def set_key(folder: Path, section: str, key: str, raw: str) -> None:
    """`key = raw` (raw TOML) in [section] of the folder's newsletter.toml, replacing the key if it is there."""
    path = folder / "newsletter.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index(f"[{section}]\n") + len(f"[{section}]\n")
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end + 1
    body = text[start:end]
    line = re.compile(rf"^{re.escape(key)} = .*$", re.M)
    body = line.sub(lambda _m: f"{key} = {raw}", body, count=1) if line.search(body) else f"{key} = {raw}\n{body}"
    path.write_text(text[:start] + body + text[end:], encoding="utf-8")


def encoded(encoding: str, name_line: str = "") -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        path = folder / "newsletter.toml"
        text = path.read_text(encoding="utf-8")
        if name_line:
            text = text.replace('name = "Privacy Notes"', name_line)
        path.write_bytes(text.encode(encoding))

    return write


def key(section: str, name: str, raw: str) -> Callable[[Path], None]:
    return lambda folder: set_key(folder, section, name, raw)


def keys(*settings: tuple[str, str, str]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        for section, name, raw in settings:
            set_key(folder, section, name, raw)

    return write


CONFIG_CASES = {
    "utf-16 file": (
        encoded("utf-16"),
        {},
        'newsletter.toml:1: the file is UTF-16 (Notepad\'s "Unicode"); save it as UTF-8',
    ),
    "latin-1 file": (
        encoded("latin-1", 'name = "Café Notes"'),
        {},
        "newsletter.toml:6: not UTF-8 text (byte 0xE9); save the file as UTF-8",
    ),
    "timeout nan": (
        key("smtp", "timeout", "nan"),
        {},
        "newsletter.toml: [smtp] timeout: nan is not a finite number; give a value like 30",
    ),
    "timeout inf (environment)": (
        None,
        {"NEWSLETTER_SMTP_TIMEOUT": "inf"},
        "environment variable NEWSLETTER_SMTP_TIMEOUT: 'inf' is not a finite number; give a value like 30",
    ),
    "timeout 0": (
        key("smtp", "timeout", "0"),
        {},
        "newsletter.toml: [smtp] timeout: 0 is not a timeout; give seconds above 0, e.g. 30",
    ),
    "timeout negative (environment)": (
        None,
        {"NEWSLETTER_SMTP_TIMEOUT": "-5"},
        "environment variable NEWSLETTER_SMTP_TIMEOUT: -5 is not a timeout; give seconds above 0, e.g. 30",
    ),
    "retry delay nan (environment)": (
        None,
        {"NEWSLETTER_SMTP_RETRY_BASE_DELAY": "NaN"},
        "environment variable NEWSLETTER_SMTP_RETRY_BASE_DELAY: 'NaN' is not a finite number; give a value like 30",
    ),
    "retry delay 0": (
        key("smtp", "retry_base_delay", "0"),
        {},
        "newsletter.toml: [smtp] retry_base_delay: 0 is not a delay; give seconds above 0 and at most 600, e.g. 2",
    ),
    "rate inf": (
        key("smtp", "rate", "inf"),
        {},
        "newsletter.toml: [smtp] rate: inf is not a finite number; give a value like 30",
    ),
    "two From addresses": (
        key("newsletter", "from", '"Ada <ada@example.com>, Eve <eve@example.net>"'),
        {},
        f"newsletter.toml: [newsletter] from: 'Ada <ada@example.com>, Eve <eve@example.net>' names 2 addresses; "
        f"{ONE_ADDRESS}",
    ),
    "malformed From": (
        key("newsletter", "from", '"Ada <ada@example.com"'),
        {},
        f"newsletter.toml: [newsletter] from: 'Ada <ada@example.com' is not an address; {ONE_ADDRESS}",
    ),
    "two Reply-To addresses (environment)": (
        None,
        {"NEWSLETTER_NEWSLETTER_REPLY_TO": "a@example.com, b@example.com"},
        f"environment variable NEWSLETTER_NEWSLETTER_REPLY_TO: 'a@example.com, b@example.com' names 2 addresses; "
        f"{ONE_ADDRESS}",
    ),
    "< > in list_id": (
        key("newsletter", "list_id", '"<news.example.org>"'),
        {},
        "newsletter.toml: [newsletter] list_id: '<news.example.org>' contains < > or \"; remove them",
    ),
    "> in unsubscribe_mailto": (
        key("newsletter", "unsubscribe_mailto", '"unsubscribe@example.org>"'),
        {},
        "newsletter.toml: [newsletter] unsubscribe_mailto: 'unsubscribe@example.org>' contains < > or \"; remove them",
    ),
    "< in base_url": (
        key("newsletter", "base_url", '"https://news.example.org/<x>"'),
        {},
        "newsletter.toml: [newsletter] base_url: 'https://news.example.org/<x>' contains < > or \"; remove them",
    ),
    "control character in name": (
        key("newsletter", "name", '"Privacy\\u0007Notes"'),
        {},
        "newsletter.toml: [newsletter] name: contains a control character; remove it",
    ),
    "line separator in name (environment)": (
        None,
        {"NEWSLETTER_NEWSLETTER_NAME": "Privacy\u2028Notes"},
        "environment variable NEWSLETTER_NEWSLETTER_NAME: contains a control character; remove it",
    ),
    "digest subject outside the sandbox": (
        key("schedule", "subject", "\"{{ ''.__class__.__mro__ }}\""),
        {},
        "newsletter.toml: [schedule] subject: refused by the template sandbox (access to attribute '__class__' of "
        f"'str' object is unsafe); the template may use {SUBJECT_VARIABLES}",
    ),
    "password in clear": (
        keys(("delivery", "backend", '"smtp"'), ("smtp", "security", '"none"'), ("smtp", "username", '"editor"')),
        {},
        'newsletter.toml: [smtp] security: "none" with a username would send the password in clear; use '
        '"starttls" or "tls", or set [smtp] allow_plaintext_auth = true (a relay on this machine only)',
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_configuration_is_one_line_naming_its_key(cli: Cli, folder: Path, case: str) -> None:
    write, env, line = CONFIG_CASES[case]
    if write is not None:
        write(folder)
    cli.env.update(env)
    result = cli("status")
    assert (result.exit_code, result.stderr) == (2, f"newsletter: error: {line}\n")
    assert not (folder / "newsletter.db").exists()


def test_plaintext_auth_is_allowed_when_said_and_ignored_for_the_outbox(cli: Cli, folder: Path) -> None:
    keys(("smtp", "security", '"none"'), ("smtp", "username", '"editor"'))(folder)
    assert cli("status").exit_code == 0  # the outbox backend sends no password anywhere
    set_key(folder, "delivery", "backend", '"smtp"')
    cli.env["NEWSLETTER_SMTP_ALLOW_PLAINTEXT_AUTH"] = "true"
    assert cli("status").exit_code == 0


def _front_matter(extra: str = "") -> str:
    return f"---\ntitle: Edge\ndate: 2026-12-01\nsummary: An edge case.\n{extra}---\n"


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return _front_matter("\n".join([*lines, "tags: *a8", ""])) + "Body.\n"


ARTICLE = "issues/2026-12-01-edge.md"
ARTICLE_CASES = {
    # 357 bytes that PyYAML shares as references, and str() would expand to 387 million strings.
    "yaml alias bomb": (
        _alias_bomb(),
        f"{ARTICLE}:2: front matter holds more than 10,000 values once its YAML aliases (*name) are expanded; "
        f"write the values out instead",
    ),
    "yaml nested 2,000 deep": (
        _front_matter(f"x: {'[' * 2000}{']' * 2000}\n") + "Body.\n",
        f"{ARTICLE}:2: front matter is nested too deeply to read; flatten its lists",
    ),
    "article over 5 MB": (
        _front_matter() + "word " * (1024 * 1024 + 10),
        f"{ARTICLE}: over 5 MB (5,242,880 bytes), more than an article can be; split it, or link big content "
        f"as a file in issues/",
    ),
    "list nested 3,000 deep": (
        _front_matter() + "".join(f"{' ' * i}- item\n" for i in range(3000)),
        f"{ARTICLE}:134: nested 33 levels deep (lists, quotes or indentation); at most 32 render: flatten it",
    ),
    "quotes nested 500 deep": (
        _front_matter() + ">" * 500 + " quoted\n",
        f"{ARTICLE}:6: nested 500 levels deep (lists, quotes or indentation); at most 32 render: flatten it",
    ),
    "5,000 open brackets": (
        _front_matter() + "Intro.\n\n" + "[" * 5000 + "x\n",
        f"{ARTICLE}:8: more than 32 '[' open at once in a paragraph; close them, or write \\[ for a literal bracket",
    ),
    "paragraph of 100,000 characters": (
        _front_matter() + "word " * 20_000 + "\n",
        f"{ARTICLE}:6: a paragraph of more than 65,536 characters; break it up with blank lines (Markdown slows "
        f"down badly on longer ones)",
    ),
    "html blocks nested 500 deep": (
        _front_matter() + '<div markdown="1">\n' * 500 + "x\n" + "</div>\n" * 500,
        f"{ARTICLE}: the Markdown is nested too deeply to render; flatten it",
    ),
}


@pytest.mark.parametrize("case", list(ARTICLE_CASES))
def test_bad_article_is_one_line_naming_the_file_and_line(cli: Cli, folder: Path, case: str) -> None:
    text, line = ARTICLE_CASES[case]
    write_article(folder, "2026-12-01-edge.md", text)
    result = cli("render", "2026-12-01-edge")
    assert (result.exit_code, result.stderr) == (2, f"newsletter: error: {line}\n")
    assert not (folder / "build").exists()


def test_deep_but_reasonable_markdown_and_code_still_render(cli: Cli, folder: Path) -> None:
    code = "```\n" + "".join(f"{' ' * i}x\n" for i in range(400)) + "```\n"
    nested = "".join(f"{'    ' * i}- level {i}\n" for i in range(12))
    write_article(folder, "2026-12-01-edge.md", _front_matter() + code + "\n" + nested + "\n" + "\\[" * 100 + "\n")
    result = cli("render", "2026-12-01-edge")
    assert result.exit_code == 0, result.output
    html = (folder / "build" / "2026-12-01-edge.html").read_text()
    assert "level 11" in html and len(re.findall(r"<ul\b", html)) == 12


def _busy_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


COMMAND_CASES: dict[str, tuple[list[str], str | None, int, str]] = {
    "send-test without --to": (
        ["send-test", "latest"],
        None,
        2,
        "send-test needs --to ADDR, the address to send the test to (repeatable), e.g. newsletter send-test latest "
        "--to you@example.org",
    ),
    "unknown option": (
        ["render", "--bogus"],
        None,
        2,
        "render: no such option '--bogus'; did you mean '--out'?; see `newsletter render --help`",
    ),
    "unknown command": (["sned"], None, 2, "no such command 'sned'; did you mean 'send'?; see `newsletter --help`"),
    "bad option value": (
        ["serve", "--port", "99999"],
        None,
        2,
        "serve: invalid value for '--port': 99999 is not in the range 1<=x<=65535; see `newsletter serve --help`",
    ),
    "prompt declined": (["send", TLS], "n\n", 1, "not confirmed at the prompt; nothing was sent"),
    "prompt unanswered (no input)": (
        ["send", TLS],
        "",
        1,
        "no answer at the prompt; nothing was sent (add --yes to send without asking)",
    ),
    "preview open to other machines": (
        ["preview", "--host", "0.0.0.0"],
        None,
        2,
        "--host 0.0.0.0: other machines could read your drafts and use the Send-test button; add --allow-remote NAME "
        "for each host name or address they use to reach it (e.g. --allow-remote mybox.lan), or keep the default "
        "127.0.0.1",
    ),
}


@pytest.mark.parametrize("case", list(COMMAND_CASES))
def test_command_line_mistakes_are_one_line(cli: Cli, folder: Path, case: str) -> None:
    args, answer, status, line = COMMAND_CASES[case]
    result = cli(*args, input=answer)
    assert (result.exit_code, result.stderr.splitlines()[-1:]) == (status, [f"newsletter: error: {line}"])
    assert result.stderr.count("\n") == 1 and "Aborted" not in result.output and "Usage:" not in result.stderr
    assert not (folder / "outbox").exists()


def test_serve_on_a_busy_port_is_one_line(cli: Cli) -> None:
    with _busy_port() as busy:
        port = busy.getsockname()[1]
        result = cli("serve", "--port", str(port))
    line = (
        f"port {port} on 127.0.0.1 is busy (another program listens there); stop it or choose another with "
        f"--port or [serve] port"
    )
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (2, f"newsletter: error: {line}")
    assert "Traceback" not in result.stderr and "uvicorn" not in result.stderr.lower()


def test_outside_a_newsletter_folder_nothing_is_created(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = Cli(empty, {})("status")
    line = (
        f"no newsletter.toml and no issues/ folder in {empty}: not a newsletter folder; cd into yours, give "
        f"--config PATH, or make one with `newsletter init`"
    )
    assert (result.exit_code, result.stderr) == (2, f"newsletter: error: {line}\n")
    assert list(empty.iterdir()) == []


LIST_CASES = {
    "a line of 2 MB of commas": (
        "," * (2 * 1024 * 1024),
        "subscribers.csv:3: more than 1,048,576 characters on one line; a row is an address and a few fields: "
        "check the file",
    ),
    "a field of 70,000 characters": (
        "bob@example.org," + "B" * 70_000,
        "subscribers.csv:3: a field of 70,000 characters; at most 65,536 per field: check the quotes, or shorten "
        "the value",
    ),
}


@pytest.mark.parametrize("case", list(LIST_CASES))
def test_oversized_list_lines_are_one_invalid_row(cli: Cli, folder: Path, case: str) -> None:
    row, line = LIST_CASES[case]
    (folder / "subscribers.csv").write_text(f"email,name\nada@example.com,Ada\n{row}\ncy@example.net,Cy\n")
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "subscribers.csv"
    result = cli("subscribers", "check")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        line,
        "subscribers.csv: 3 rows; 2 valid (2 active); 1 invalid; 1 error, 0 warnings",
    ]
    sent = cli("send", TLS, "--yes")  # the rest of the list is sent; that line is skipped and named
    assert sent.exit_code == 0, sent.output
    assert "skipped 1 invalid row of subscribers.csv: line 3" in sent.stderr
    assert len(list((folder / "outbox").glob("*/*.eml"))) == 2


@pytest.mark.e2e
def test_a_huge_line_of_commas_is_read_in_bounded_memory(cli: Cli, folder: Path) -> None:
    """256 MB of commas on one line: before, a list of 268 million empty fields (about 2 GB); now 1 MB at a time."""
    with (folder / "subscribers.csv").open("w") as fh:
        fh.write("email,name\nada@example.com,Ada\n")
        chunk = "," * (16 * 1024 * 1024)
        for _ in range(16):
            fh.write(chunk)
        fh.write("\ncy@example.net,Cy\n")
    cli.env["NEWSLETTER_PATHS_SUBSCRIBERS"] = "subscribers.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "subscribers", "check"],
        cwd=folder,
        env={**os.environ, **cli.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    peak_mb = usage.ru_maxrss / 1024
    assert os.waitstatus_to_exitcode(status) == 1
    assert first.startswith("subscribers.csv:3: more than 1,048,576 characters on one line")
    assert peak_mb < 200, f"peak RSS {peak_mb:.0f} MB"
