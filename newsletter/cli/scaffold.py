"""`newsletter init`: a working newsletter folder (config, theme, example article and list, .gitignore)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..errors import NewsletterError
from ..render.theme import builtin_templates, skeleton_root

EXAMPLE_ARTICLE = "2026-11-23-welcome.md"
GITIGNORE = """\
# Personal data and local state: never commit these.
subscribers.csv
*.db
*.db-journal
*.db-wal
*.db-shm
*.db.journal-*
*.db.unsubscribes
*.db.sends
outbox/
build/
site/
"""


_TIMEZONE = re.compile(r'^timezone = ".*"$', re.M)


def config_text(source: Path) -> str:
    """The starter newsletter.toml with this machine's time zone (what the schedule and dates default to)."""
    from ..config.schedule import local_zone

    name = getattr(local_zone(), "key", "")
    line = f'timezone = "{name}"' if name else '# timezone = "Europe/Berlin"   # unset: the machine\'s zone'
    return _TIMEZONE.sub(lambda _m: line, source.read_text(encoding="utf-8"), count=1)


def init_folder(target: Path, force: bool = False) -> list[Path]:
    """Create a working newsletter folder; returns the files written. Never overwrites without force."""
    root = skeleton_root()
    plan: list[tuple[Path, Path | str]] = [
        (target / "newsletter.toml", config_text(root / "newsletter.toml")),
        (target / "subscribers.example.csv", root / "subscribers.example.csv"),
        (target / "issues" / EXAMPLE_ARTICLE, root / "issues" / EXAMPLE_ARTICLE),
        (target / ".gitignore", GITIGNORE),
    ]
    for template in sorted(builtin_templates().rglob("*")):
        if template.is_file():
            plan.append((target / "templates" / template.relative_to(builtin_templates()), template))
    existing = [dest for dest, _ in plan if dest.exists()]
    if existing and not force:
        raise NewsletterError(f"{existing[0]} already exists; run `newsletter init` in an empty folder or add --force")
    written = []
    for dest, source in plan:
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, Path):
                shutil.copyfile(source, dest)
            else:
                dest.write_text(source, encoding="utf-8")
        except OSError as exc:
            raise NewsletterError(f"{dest}: cannot write ({exc.strerror}); check the folder's permissions") from None
        written.append(dest)
    return written
