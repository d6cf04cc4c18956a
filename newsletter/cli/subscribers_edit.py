"""`subscribers add|remove|tag|untag|import`: the operator's changes to the list in the state database."""

from __future__ import annotations

from pathlib import Path

import click

from ..content.addresses import normalize_address
from ..content.importing import import_file
from ..content.listsync import sync_csv
from ..content.names import first_name_of
from ..content.sources import FORMATS, parse_map
from ..errors import NewsletterError
from ..state.erasure import erase, is_erased
from ..state.subscribers import add_by_operator, find, set_tag
from ..state.suppressions import reason_for
from . import State, engine, pass_state, warn
from .subscribers_cmds import list_engine, report_problems, subscribers, tag_option

_CONTROL = {chr(c) for c in range(32)} | {"\x7f"}


def _name(value: str | None, what: str) -> str | None:
    if value is not None and any(c in _CONTROL for c in value):
        raise NewsletterError(f"{what}: contains a line break or control character, which cannot go into a header")
    return value.strip() if value is not None else None


@subscribers.command()
@click.argument("email")
@click.option("--name", default=None, help="Full name (the To: header); the first name is derived from it.")
@click.option("--first-name", default=None, help="First name for the greeting, when it is not the name's first word.")
@click.option("--tag", "tags", multiple=True, help="Tag to give (repeatable).")
@pass_state
def add(state: State, email: str, name: str | None, first_name: str | None, tags: tuple[str, ...]) -> None:
    """Add EMAIL as an active subscriber, confirmed by you (recorded as such in its consent record).

    An address already on the list gets the name and the tags; a pending signup becomes active.
    A suppressed or erased address is refused: only the person can come back (the signup form).
    """
    address = normalize_address(email, "EMAIL")
    name = _name(name, "--name")
    first_name = _name(first_name, "--first-name")
    if name is not None and first_name is None:
        first_name = first_name_of(name)
    clean_tags = [tag_option(t) for t in tags]
    db = list_engine(state.config)
    reason = reason_for(db, address)
    if reason is not None or is_erased(db, address):
        why = f"suppressed ({reason})" if reason else "erased (subscribers remove)"
        raise NewsletterError(
            f"{address} is {why}; it is not added back without the person: they can sign up again on the form, "
            f"or use `newsletter subscribers resubscribe {address}` if they asked you"
        )
    outcome = add_by_operator(db, address, name, first_name, clean_tags)
    row = find(db, address)
    assert row is not None
    tags_text = f"; tags: {', '.join(row.tags)}" if row.tags else ""
    said = {
        "added": "added (active, by you)",
        "activated": "now active (confirmed by you)",
        "updated": "already on the list; updated",
        "unchanged": "already on the list; nothing changed",
    }[outcome]
    click.echo(f"{address}: {said}{tags_text}")


@subscribers.command()
@click.argument("email")
@pass_state
def remove(state: State, email: str) -> None:
    """Erase EMAIL: its subscriber row, tags, consent record and suppression are deleted, and its past
    delivery rows anonymized. A one-way hash is kept, so no later import or CSV sync can bring it back."""
    address = normalize_address(email, "EMAIL")
    found = erase(list_engine(state.config), address)
    kept = "a one-way hash is kept so no import or CSV brings it back"
    if found:
        click.echo(f"{address}: erased (personal data deleted; {kept})")
    else:
        click.echo(f"{address} was not on the list; {kept}")
    path = state.config.path("subscribers")
    if path.exists():
        click.echo(f"note: if {path} lists {address}, delete that row too", err=True)


def _tag(state: State, email: str, tag: str, present: bool) -> None:
    address = normalize_address(email, "EMAIL")
    clean = tag_option(tag)
    db = list_engine(state.config)
    changed = set_tag(db, address, clean, present)
    if changed is None:
        raise NewsletterError(f"{address} is not on the list; add it first (newsletter subscribers add {address})")
    verb = "tagged" if present else "untagged"
    click.echo(f"{address}: {verb} {clean}" if changed else f"{address}: nothing changed ({verb} {clean} already)")
    row = find(db, address)
    if changed and row is not None and row.source == "csv" and "tags" in row.fields:
        warn(
            f"{state.config.path('subscribers')}:{row.line}: the file's tags column sets this subscriber's tags at "
            f"every sync; change the tags there"
        )


@subscribers.command()
@click.argument("email")
@click.argument("tag")
@pass_state
def tag(state: State, email: str, tag: str) -> None:
    """Give EMAIL the tag TAG (case-insensitive); `send --tag TAG` reaches everyone with it."""
    _tag(state, email, tag, True)


@subscribers.command()
@click.argument("email")
@click.argument("tag")
@pass_state
def untag(state: State, email: str, tag: str) -> None:
    """Take the tag TAG from EMAIL."""
    _tag(state, email, tag, False)


@subscribers.command("import")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--format",
    "format_name",
    type=click.Choice(["auto", *FORMATS]),
    default="auto",
    show_default=True,
    help="The service that wrote the file; auto recognizes it by its header.",
)
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD", help="Read COLUMN as FIELD (repeatable).")
@click.option("--dry-run", is_flag=True, help="Read and count everything; change nothing.")
@pass_state
def import_cmd(state: State, file: Path | None, format_name: str, maps: tuple[str, ...], dry_run: bool) -> None:
    """Import FILE, an export of Mailchimp, Substack, Buttondown, listmonk or a CSV with an email column.

    Without FILE, sync [paths] subscribers into the list now (every send does it too).
    FIELD is email, name, first_name, last_name, tags, status, subscribed_at, skip, or a custom field.
    """
    config = state.config
    db = engine(config)
    if file is None:
        if maps or format_name != "auto":
            raise NewsletterError("--format and --map go with a FILE; the list's own CSV has fixed columns")
        synced = sync_csv(config, db, dry_run=dry_run)
        report_problems(synced.report)
        click.echo(synced.summary() + ("; dry run: nothing was changed" if dry_run and not synced.missing else ""))
        return
    result = import_file(db, file, format_name=format_name, mapping=parse_map(maps), dry_run=dry_run)
    report_problems(result.report)
    click.echo(result.summary())
