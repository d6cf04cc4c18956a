"""Where a send's recipients come from: the list in the state database, after syncing the CSV into it.

Every send (and its prompt, and a dry run) first syncs [paths] subscribers into the database
(content.listsync), then reaches the active subscribers: all of them, or those with any of the
issue's audience tags (`send --tag`, front matter `audience:`). A segment send is its own campaign
(key `<slug>@<tags>`), and nobody gets an issue twice whichever segments it went to.
"""

from __future__ import annotations

from sqlalchemy import Engine

from ..config import Config
from ..content.issue import Issue, audience_of
from ..content.listsync import SyncResult, sync_csv
from ..errors import NewsletterError
from ..state import audience, campaigns
from ..state.signups import purge_pending
from ..state.subscribers import tag_counts
from ..state.unsubscribes import fold


def describe(issue: Issue) -> str:
    """Who the issue goes to, for the prompt: "everyone on the list" or "subscribers tagged a or b"."""
    if not issue.audience:
        return "everyone on the list"
    return "subscribers tagged " + " or ".join(issue.audience)


def sync_list(
    config: Config, engine: Engine, *, allow_shrink: bool = False, csv_lines: int | None = None
) -> SyncResult:
    """The CSV into the database (and signups whose link expired out of it), before a send reads the list.

    Unsubscribes `serve` had to keep in its journal go into the suppression list first.
    """
    fold(config, engine)
    purge_pending(engine, config.signup.confirm_expiry)
    return sync_csv(config, engine, allow_shrink=allow_shrink, csv_lines=csv_lines)


def _nobody(config: Config) -> NewsletterError:
    path = config.path("subscribers")
    where = "" if path.exists() else f" ({path} not found)"
    return NewsletterError(
        f"the list has no active subscriber{where}: nobody to send to; add people with `newsletter subscribers "
        f"add` or `import`, the signup form of `newsletter serve`, or a CSV at [paths] subscribers"
    )


def check_list(config: Config, engine: Engine, csv_lines: int) -> int:
    """Before a streamed send: refuse a list that can reach nobody (no CSV rows, nobody active in the database).

    Returns about how many it will reach, for the progress bar: the CSV's rows or the active list.
    """
    estimate = max(csv_lines, audience.counts(engine)[0])
    if estimate == 0:
        raise _nobody(config)
    return estimate


def check_audience(config: Config, engine: Engine, issue: Issue) -> None:
    """Refuse a send that could reach nobody: an empty list (a typo in [paths] subscribers?) or an unknown tag."""
    if not issue.audience and audience.counts(engine)[0] == 0:
        raise _nobody(config)
    missing = audience.unknown_tags(engine, issue.audience)
    if not missing:
        return
    article = issue.articles[0] if issue.articles else None
    where = (
        f"{article.path}: audience"
        if article is not None and issue.kind == "article" and audience_of(article) == issue.audience
        else "--tag"
    )
    known = ", ".join(tag_counts(engine)) or "none yet"
    raise NewsletterError(
        f"{where}: no subscriber has the tag {missing[0]!r}; check the spelling (tags in use: {known}), "
        f"or tag people with `newsletter subscribers tag EMAIL TAG`"
    )


def other_sends(engine: Engine, issue: Issue) -> list[int]:
    """Campaigns of the same issue to another audience (the whole list or other tags): their recipients are skipped."""
    prefix = issue.key + "@"
    return [
        c.id
        for c in campaigns.campaigns_for(engine)
        if c.key != issue.campaign_key and (c.key == issue.key or c.key.startswith(prefix))
    ]
