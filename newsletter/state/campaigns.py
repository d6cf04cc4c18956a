"""Campaigns: one row per version (content hash) and round of an issue, with its status."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, update

from .engine import insert, utcnow
from .schema import campaigns
from .statuses import CampaignStatus


@dataclass(frozen=True)
class CampaignRow:
    id: int
    key: str
    content_hash: str
    round: int
    subject: str
    title: str
    status: CampaignStatus
    runs: int
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    # What Message-IDs derive from: the same across resumes and edited versions, new for a --resend.
    message_key: str

    @property
    def lock_name(self) -> str:
        """One sender per issue, whatever its version: the lock is named after the key."""
        return lock_name(self.key)


def lock_name(key: str) -> str:
    return f"campaign:{key}"


def _campaign(row: Any) -> CampaignRow:
    values = {c: row._mapping[c] for c in CampaignRow.__dataclass_fields__}
    values["status"] = CampaignStatus(values["status"])
    return CampaignRow(**values)


def campaigns_for(engine: Engine, key: str | None = None) -> list[CampaignRow]:
    """Campaigns, newest first; only those of one issue key when given."""
    stmt = select(campaigns).order_by(campaigns.c.created_at.desc(), campaigns.c.id.desc())
    if key is not None:
        stmt = stmt.where(campaigns.c.key == key)
    with engine.connect() as conn:
        return [_campaign(r) for r in conn.execute(stmt)]


def latest_campaign(engine: Engine, key: str, content_hash: str) -> CampaignRow | None:
    stmt = (
        select(campaigns)
        .where(campaigns.c.key == key, campaigns.c.content_hash == content_hash)
        .order_by(campaigns.c.round.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    return _campaign(row) if row else None


def unfinished_other_versions(engine: Engine, key: str, content_hash: str) -> list[CampaignRow]:
    """Partial sends of an earlier version of the same issue (the issue was edited since)."""
    stmt = select(campaigns).where(
        campaigns.c.key == key, campaigns.c.content_hash != content_hash, campaigns.c.status == CampaignStatus.SENDING
    )
    with engine.connect() as conn:
        return [_campaign(r) for r in conn.execute(stmt)]


def finished_campaign(engine: Engine, key: str) -> CampaignRow | None:
    """The latest campaign of this issue key that finished, whatever version (content hash) it sent."""
    stmt = (
        select(campaigns)
        .where(campaigns.c.key == key, campaigns.c.status == CampaignStatus.FINISHED)
        .order_by(campaigns.c.finished_at.desc(), campaigns.c.id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(stmt).first()
    return _campaign(row) if row else None


def other_version_ids(engine: Engine, key: str, content_hash: str) -> list[int]:
    """Campaigns of earlier (or later) versions of the same issue, whatever their status."""
    stmt = select(campaigns.c.id).where(campaigns.c.key == key, campaigns.c.content_hash != content_hash)
    with engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def is_finished(engine: Engine, key: str) -> bool:
    """Whether any campaign of this issue key has finished."""
    stmt = (
        select(func.count())
        .select_from(campaigns)
        .where(campaigns.c.key == key, campaigns.c.status == CampaignStatus.FINISHED)
    )
    with engine.connect() as conn:
        return bool(conn.execute(stmt).scalar())


def started_keys(engine: Engine) -> set[str]:
    """Every issue key that has a campaign (any version, any status): what has gone out, or began to."""
    with engine.connect() as conn:
        return set(conn.execute(select(campaigns.c.key).distinct()).scalars())


def create_campaign(
    engine: Engine, key: str, content_hash: str, round_: int, subject: str, title: str, message_key: str = ""
) -> CampaignRow:
    """A new campaign (or the one that exists with this identity); `message_key` defaults to the key (round 1)."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(engine, campaigns)
            .values(
                key=key,
                content_hash=content_hash,
                round=round_,
                subject=subject,
                title=title,
                status=CampaignStatus.SENDING,
                runs=0,
                created_at=now,
                updated_at=now,
                message_key=message_key or (key if round_ == 1 else f"{key}:r{round_}"),
            )
            .on_conflict_do_nothing()
        )
    found = latest_campaign(engine, key, content_hash)
    assert found is not None
    return found


def begin_run(engine: Engine, campaign_id: int) -> int:
    """Count a new run; returns its number (rows seen in the list during this run get it)."""
    with engine.begin() as conn:
        conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(runs=campaigns.c.runs + 1, updated_at=utcnow(), status=CampaignStatus.SENDING, finished_at=None)
        )
        return int(conn.execute(select(campaigns.c.runs).where(campaigns.c.id == campaign_id)).scalar_one())


def set_status(engine: Engine, campaign_id: int, status: CampaignStatus) -> None:
    now = utcnow()
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == CampaignStatus.FINISHED:
        values["finished_at"] = now
    with engine.begin() as conn:
        conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(**values))
