"""Erasure (`subscribers remove`): the address and everything personal go; a one-way hash stays.

The hash lets an import or the CSV recognize the address if it ever comes back, without the
database holding it: the subscriber row and its tags are deleted, its suppression (in clear) too,
and every delivery row that named it is anonymized. A confirmed signup (the person's own new
consent) or `subscribers resubscribe` lifts the erasure.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, delete, func, select, update

from .engine import insert, utcnow
from .schema import deliveries, erasures, subscribers, suppressions


def erasure_hash(email: str) -> str:
    """SHA-256 of the lower-cased address (no secret: it must survive a changed NEWSLETTER_SECRET_KEY)."""
    digest = hashlib.sha256(b"newsletter/erased\0" + email.lower().encode()).hexdigest()
    return f"sha256:{digest}"


def erased_hashes(engine: Engine) -> set[str]:
    """Every erasure hash; small (people who asked to be forgotten), read once per import or sync."""
    with engine.connect() as conn:
        return set(conn.execute(select(erasures.c.email_hash)).scalars())


def is_erased(engine: Engine, email: str) -> bool:
    with engine.connect() as conn:
        found = conn.execute(select(erasures.c.email_hash).where(erasures.c.email_hash == erasure_hash(email)))
        return found.first() is not None


def erase(engine: Engine, email: str) -> bool:
    """Delete everything personal about `email`, keep its hash; True when there was anything to delete."""
    key = email.lower()
    hashed = erasure_hash(key)
    anonymous = f"erased:{hashed.removeprefix('sha256:')[:16]}"
    with engine.begin() as conn:
        removed = conn.execute(delete(subscribers).where(subscribers.c.email_key == key)).rowcount
        removed += conn.execute(delete(suppressions).where(suppressions.c.email == key)).rowcount
        removed += conn.execute(
            update(deliveries)
            .where(deliveries.c.email_key == key)
            .values(email=anonymous, email_key=anonymous, name="", fields="{}", last_reply="")
        ).rowcount
        conn.execute(
            insert(engine, erasures)
            .values(email_hash=hashed, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=["email_hash"])
        )
    return removed > 0


def lift_erasure(engine: Engine, email: str) -> bool:
    with engine.begin() as conn:
        return conn.execute(delete(erasures).where(erasures.c.email_hash == erasure_hash(email))).rowcount > 0


def erasure_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(erasures)).scalar_one())
