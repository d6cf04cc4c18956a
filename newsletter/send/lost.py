"""A state database that forgot earlier sends: noticed before a send mails everyone again.

The database is the only record of who got what. When it is deleted, truncated to nothing, replaced
or restored from an older copy, a send would find nobody sent and mail the whole list again (and the
unsubscribes it held are gone too). What outlives it says so: the record of sends beside it
(state/history.py), the outbox's campaign folders, send journals of campaigns it does not know, a
static site with digests that went out. Then a send refuses (asks, without --yes) unless the
operator says they really start over.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from ..config import Config
from ..content.issue import Issue
from ..state import campaigns
from ..state.history import history_path, recorded


def _names(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit:,} more" if len(items) > limit else "")


def _outbox_campaigns(config: Config) -> list[str]:
    outbox = config.path("outbox")
    if not outbox.is_dir():
        return []
    return sorted(
        p.name
        for p in outbox.iterdir()
        if p.is_dir() and p.name != "signup" and not p.name.startswith("test-") and any(p.glob("*.eml"))
    )


def orphan_journals(config: Config, known: set[int]) -> list[Path]:
    """Send journals next to a SQLite database whose campaign id it does not have (written by a lost one)."""
    if config.state_is_url:
        return []
    state = config.path("state").resolve()
    found = []
    for path in state.parent.glob(f"{state.name}.journal-*"):
        ident = path.name.rpartition("-")[2]
        if ident.isdigit() and int(ident) not in known:
            found.append(path)
    return sorted(found)


def _sent_digests(config: Config) -> list[str]:
    archive = config.path("site") / "archive"
    return sorted(p.name for p in archive.glob("digest-*") if p.is_dir()) if archive.is_dir() else []


def lost_state(config: Config, engine: Engine, issue: Issue) -> str:
    """Why the database looks like it forgot earlier sends of this newsletter; empty when it does not."""
    known = campaigns.campaigns_for(engine)
    key = issue.campaign_key
    if any(c.key == key for c in known):
        return ""
    history = recorded(config)
    evidence = []
    if key in history:
        evidence.append(f"{history_path(config).name} records a send of {key} on {history[key][:10]}")
    if not known:
        if history and key not in history:
            names = _names(list(history))
            evidence.append(f"{history_path(config).name} records {len(history):,} earlier campaigns ({names})")
        outbox = _outbox_campaigns(config)
        if outbox:
            evidence.append(f"{config.paths.outbox}/ holds messages of {_names(outbox)}")
        digests = _sent_digests(config)
        if digests:
            evidence.append(f"the site in {config.paths.site}/ shows sent digests ({_names(digests)})")
    journals = orphan_journals(config, {c.id for c in known})
    if journals:
        names = _names([p.name for p in journals])
        evidence.append(f"send journals of campaigns it does not know are beside it ({names})")
    if not evidence:
        return ""
    which = "any send" if not known else f"a send of {key}"
    return (
        f"{config.state_shown} has no record of {which}, but {'; '.join(evidence)}: the state database was deleted, "
        f"emptied, replaced or restored from an older copy, and this send would mail {key}'s audience again (the "
        f"unsubscribes it held may be gone too); restore it from a backup (newsletter db backup makes one), or, "
        f"if you really start over, send with --accept-new-state"
    )


def first_send_note(config: Config, engine: Engine) -> str:
    """The prompt's note when the database has no campaign at all (and nothing says it had one)."""
    if campaigns.campaigns_for(engine):
        return ""
    return (
        f"{config.state_shown} records no send yet: if this newsletter went out before from another state "
        f"database, its readers get this issue again"
    )


def set_aside(journals: list[Path]) -> None:
    """Starting over: a lost database's journals must never be replayed onto new campaigns with their ids."""
    for path in journals:
        path.rename(path.with_name(f"{path.name}.orphaned"))
