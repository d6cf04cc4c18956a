"""Files that belong with the state database: beside a SQLite file, else (PostgreSQL) in the config's folder.

The send journals, the unsubscribe journal and the record of sends live there: on the machine that
writes them, named after the database they belong to (`newsletter.db.sends`, `newsletter.sends` for a
PostgreSQL database called newsletter).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ..config import Config


def beside_state(config: Config, suffix: str) -> Path:
    """`<state>.<suffix>`: next to the SQLite file, or `<database name>.<suffix>` in config.state_dir."""
    if config.state_is_url:
        name = urlsplit(config.paths.state).path.strip("/") or "newsletter"
        return config.state_dir / f"{name}.{suffix}"
    state = config.path("state").resolve()
    return state.with_name(f"{state.name}.{suffix}")
