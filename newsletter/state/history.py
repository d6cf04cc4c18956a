"""The record of sends kept beside the state database: what makes losing the database visible.

`<state>.sends` gets a line for every send run (the time, the campaign key and id) before its first
message. It never says who got what (the database does); it only lets a later send notice that the
database forgot campaigns it once had (deleted, truncated, replaced, restored from an older copy)
before it mails everyone again. A file that cannot be written is not a reason to stop a send: the
journals and the database still hold the truth.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from ..config import Config
from .beside import beside_state


def history_path(config: Config) -> Path:
    return beside_state(config, "sends")


def record_run(config: Config, key: str, campaign_id: int) -> None:
    """Append this run's line (best effort: an unwritable folder only loses the safety net)."""
    line = f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}\t{key}\t{campaign_id}\n".encode()
    try:
        fd = os.open(history_path(config), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError:
        pass


def recorded(config: Config) -> dict[str, str]:
    """Campaign key -> when it was first sent, from the record (empty when there is none)."""
    try:
        text = history_path(config).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            found.setdefault(parts[1], parts[0])
    return found
