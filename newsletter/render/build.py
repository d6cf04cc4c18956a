"""`newsletter render`: write the exact HTML, the text part and a sample .eml for one issue."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Config
from ..content.issue import Issue
from ..content.subscribers import sample_subscriber
from ..errors import NewsletterError
from ..state.files import private_dir, write_private
from .issue import RenderedIssue, render_issue
from .mime import MessageFactory


@dataclass(frozen=True)
class BuildOutput:
    rendered: RenderedIssue
    files: list[tuple[Path, int]]


def build_issue(config: Config, issue: Issue, out_dir: Path) -> BuildOutput:
    rendered = render_issue(issue, config)
    sample = sample_subscriber(config)
    factory = MessageFactory(rendered, config)
    links = factory.unsubscriber.links(sample.email)
    html, text = rendered.personalize(sample.fields, links.url)
    eml = factory.build(sample)
    files = []
    try:
        private_dir(out_dir)
        for suffix, data in ((".html", html.encode()), (".txt", text.encode()), (".eml", eml)):
            path = out_dir / f"{issue.key}{suffix}"
            write_private(path, data)  # personalized for a subscriber: 0600
            files.append((path, len(data)))
    except OSError as exc:
        raise NewsletterError(f"{out_dir}: cannot write the output ({exc.strerror}); choose --out DIR") from None
    return BuildOutput(rendered, files)
