"""Signups on `newsletter serve`: a pending row while the confirmation link is out, active once confirmed.

The confirmation is the person's own consent, proven by the link that reached their mailbox: it
makes the row active and the signup's own (a CSV sync never removes it), and lifts a suppression or
an erasure of the address. Pending rows that were never confirmed are deleted once their link
has expired, so nobody's address stays because someone else typed it into the form.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Literal

from sqlalchemy import Engine, delete, select, update

from .engine import insert, utcnow
from .erasure import erasure_hash
from .schema import erasures, subscribers, suppressions
from .statuses import SubscriberSource, SubscriberStatus

S = SubscriberStatus
SignupState = Literal["new", "pending", "active", "suppressed"]
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def signup_state(engine: Engine, email: str) -> SignupState:
    """What a signup for `email` meets: nothing yet, a pending signup, a subscriber, or a suppressed address."""
    key = email.lower()
    with engine.connect() as conn:
        if conn.execute(select(suppressions.c.email).where(suppressions.c.email == key)).first() is not None:
            return "suppressed"
        if conn.execute(select(erasures.c.email_hash).where(erasures.c.email_hash == erasure_hash(key))).first():
            return "suppressed"
        status = conn.execute(select(subscribers.c.status).where(subscribers.c.email_key == key)).scalar()
    if status is None:
        return "new"
    if status == S.ACTIVE:
        return "active"
    return "pending" if status == S.PENDING else "suppressed"


def record_pending(engine: Engine, email: str, name: str, first_name: str, client_hash: str) -> bool:
    """A pending row for a new address (nothing happens to an existing one); True when one was made."""
    now = utcnow()
    stmt = insert(engine, subscribers).values(
        email_key=email.lower(),
        email=email,
        name=name,
        first_name=first_name,
        status=S.PENDING,
        source=SubscriberSource.SIGNUP,
        fields=_dumps({"email": email, "name": name, "first_name": first_name}),
        line=0,
        consent_how=SubscriberSource.SIGNUP,
        consent_at=now,
        consent_detail="signup form, not confirmed yet",
        consent_ip=client_hash,
        created_at=now,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_nothing(index_elements=["email_key"]).returning(subscribers.c.id)
    with engine.begin() as conn:
        return conn.execute(stmt).first() is not None


def confirm(
    engine: Engine, email: str, name: str, first_name: str, requested_at: dt.datetime, client_hash: str
) -> None:
    """The confirmation link was used: the address is an active subscriber by signup. Idempotent."""
    key = email.lower()
    now = utcnow()
    consent = {
        "status": S.ACTIVE,
        "source": SubscriberSource.SIGNUP,
        "consent_how": SubscriberSource.SIGNUP,
        "consent_at": requested_at,
        "consent_detail": "signup form",
        "confirmed_at": now,
        "consent_ip": client_hash,
        "updated_at": now,
    }
    with engine.begin() as conn:
        conn.execute(delete(suppressions).where(suppressions.c.email == key))
        conn.execute(delete(erasures).where(erasures.c.email_hash == erasure_hash(key)))
        old = conn.execute(
            select(subscribers.c.id, subscribers.c.name, subscribers.c.first_name, subscribers.c.fields).where(
                subscribers.c.email_key == key
            )
        ).first()
        if old is None:
            fields = {"email": email, "name": name, "first_name": first_name}
            values = {"email_key": key, "email": email, "name": name, "first_name": first_name, "line": 0}
            conn.execute(insert(engine, subscribers).values(**values, fields=_dumps(fields), created_at=now, **consent))
            return
        # A name typed at signup replaces the stored one; an empty one keeps it.
        name, first_name = name or old.name, (first_name if name else old.first_name)
        fields = {**json.loads(old.fields), "name": name, "first_name": first_name}
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == old.id)
            .values(name=name, first_name=first_name, fields=_dumps(fields), **consent)
        )


def purge_pending(engine: Engine, older_than: dt.timedelta) -> int:
    """Delete signups never confirmed whose link has expired."""
    stmt = delete(subscribers).where(
        subscribers.c.status == S.PENDING,
        subscribers.c.source == SubscriberSource.SIGNUP,
        subscribers.c.created_at < utcnow() - older_than,
    )
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount
