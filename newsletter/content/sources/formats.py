"""The export formats `subscribers import` knows, recognized by their headers, from the services' documented columns.

Each format says which column holds what (a *role*: email, name, first/last name, tags, status,
consent time, JSON attributes, or dropped) and what its status values mean. Columns a format does
not name become custom fields (`Phone Number` -> subscriber.phone_number). Dropped: the services'
internal ids, tracking and scoring columns, and every IP address (never stored in clear here).

- mailchimp: an audience export (subscribed, unsubscribed or cleaned members: the file's kind is
  told by its UNSUB_TIME / CLEAN_TIME columns); "Email Address", "First Name", "Last Name", TAGS.
- substack: `email`, `email_disabled` (true: the reader turned email off), `active_subscription`,
  `plan`, `created_at`.
- buttondown: `email` (or `email_address`), `subscriber_type` (regular, premium, unactivated,
  unsubscribed, removed...), `tags`, `metadata` (JSON), `creation_date`.
- listmonk: `uuid`, `email`, `name`, `attributes` (JSON), `status` (enabled, disabled, blocklisted).
- csv: this tool's own columns (email, name, first_name, status, tags `a;b`, subscribed_at), as
  `subscribers export` writes them, or any CSV with an `email` column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ...state.statuses import SuppressionReason

Role = Literal["email", "name", "first_name", "last_name", "tags", "status", "consent_at", "attributes", "drop"]
ROLES: tuple[str, ...] = Role.__args__  # type: ignore[attr-defined]
Verdict = tuple[Literal["active", "suppress", "skip"], SuppressionReason | None, str]

ACTIVE: Verdict = ("active", None, "")
UNSUBSCRIBED = SuppressionReason.UNSUBSCRIBED
BOUNCED = SuppressionReason.BOUNCED
COMPLAINED = SuppressionReason.COMPLAINED


def suppress(reason: SuppressionReason, why: str) -> Verdict:
    return ("suppress", reason, why)


def skip(why: str) -> Verdict:
    return ("skip", None, why)


# The shared vocabulary: what a status value means whichever service wrote it.
GENERAL: dict[str, Verdict] = {
    "": ACTIVE,
    "active": ACTIVE,
    "subscribed": ACTIVE,
    "enabled": ACTIVE,
    "confirmed": ACTIVE,
    "unsubscribed": suppress(UNSUBSCRIBED, "unsubscribed"),
    "disabled": suppress(UNSUBSCRIBED, "disabled"),
    "blocklisted": suppress(UNSUBSCRIBED, "blocklisted"),
    "removed": suppress(UNSUBSCRIBED, "removed"),
    "bounced": suppress(BOUNCED, "bounced"),
    "cleaned": suppress(BOUNCED, "cleaned (bounced)"),
    "complained": suppress(COMPLAINED, "complained"),
    "pending": skip("never confirmed the subscription; not imported (they can sign up themselves)"),
    "unconfirmed": skip("never confirmed the subscription; not imported (they can sign up themselves)"),
}


@dataclass(frozen=True)
class Format:
    name: str
    recognize: Callable[[set[str]], bool]  # by the lower-cased header
    columns: dict[str, Role]  # lower-cased column name -> role
    statuses: dict[str, Verdict] = field(default_factory=lambda: dict(GENERAL))
    # A status for every row, told by the header (Mailchimp's unsubscribed/cleaned exports); None: per row.
    file_status: Callable[[set[str]], Verdict | None] = lambda _header: None
    tag_separator: str = ";"
    what: str = "status"  # how messages name the status column's values

    def verdict(self, value: str) -> Verdict | None:
        """What a status value means; None when it means nothing known (an error on that line)."""
        return self.statuses.get(value.strip().lower())


def _mailchimp_file(header: set[str]) -> Verdict | None:
    if "unsub_time" in header:
        return suppress(UNSUBSCRIBED, "unsubscribed in Mailchimp")
    if "clean_time" in header:
        return suppress(BOUNCED, "cleaned in Mailchimp (bounced)")
    return None


_MAILCHIMP_DROP = (
    "member_rating",
    "optin_ip",
    "confirm_ip",
    "latitude",
    "longitude",
    "gmtoff",
    "dstoff",
    "timezone",
    "cc",
    "region",
    "last_changed",
    "leid",
    "euid",
    "notes",
    "unsub_time",
    "unsub_campaign_title",
    "unsub_campaign_id",
    "unsub_reason",
    "unsub_reason_other",
    "clean_time",
    "clean_campaign_title",
    "clean_campaign_id",
    "marketing_permissions",
    "email_format",
    "ip_signup",
    "ip_opt",
)

MAILCHIMP = Format(
    "mailchimp",
    recognize=lambda h: "email address" in h,
    columns={
        "email address": "email",
        "first name": "first_name",
        "last name": "last_name",
        "tags": "tags",
        "confirm_time": "consent_at",
        "optin_time": "consent_at",
        "status": "status",
        **{column: "drop" for column in _MAILCHIMP_DROP},
    },
    statuses={**GENERAL, "transactional": skip("a transactional contact, never subscribed; not imported")},
    file_status=_mailchimp_file,
    tag_separator=",",
)

SUBSTACK = Format(
    "substack",
    recognize=lambda h: "email" in h and ("email_disabled" in h or "active_subscription" in h),
    columns={
        "email": "email",
        "name": "name",
        "email_disabled": "status",
        "created_at": "consent_at",
        "stripe_customer_id": "drop",
    },
    statuses={
        "": ACTIVE,
        "false": ACTIVE,
        "true": suppress(UNSUBSCRIBED, "email disabled in Substack"),
    },
    what="email_disabled",
)

_BUTTONDOWN_ACTIVE = ["regular", "premium", "trialed", "unpaid", "gifted", "churning", "paused", "past_due"]
BUTTONDOWN = Format(
    "buttondown",
    recognize=lambda h: (
        bool(h & {"email", "email_address"}) and ("subscriber_type" in h or {"creation_date", "referrer_url"} <= h)
    ),
    columns={
        "email": "email",
        "email_address": "email",
        "subscriber_type": "status",
        "type": "status",
        "tags": "tags",
        "metadata": "attributes",
        "creation_date": "consent_at",
        **{
            column: "drop"
            for column in ["id", "secondary_id", "referrer_url", "utm_campaign", "utm_medium", "utm_source", "source"]
        },
        "ip_address": "drop",
    },
    statuses={
        **{value: ACTIVE for value in _BUTTONDOWN_ACTIVE},
        "unactivated": skip("never confirmed in Buttondown (unactivated); not imported (they can sign up themselves)"),
        "spammy": skip("flagged as spam by Buttondown; not imported"),
        "unsubscribed": suppress(UNSUBSCRIBED, "unsubscribed in Buttondown"),
        "removed": suppress(UNSUBSCRIBED, "removed in Buttondown"),
        "blocked": suppress(UNSUBSCRIBED, "blocked in Buttondown"),
        "complained": suppress(COMPLAINED, "complained in Buttondown"),
        "undeliverable": suppress(BOUNCED, "undeliverable in Buttondown"),
        "bounced": suppress(BOUNCED, "bounced in Buttondown"),
    },
    tag_separator=",",
    what="subscriber_type",
)

LISTMONK = Format(
    "listmonk",
    recognize=lambda h: "email" in h and "uuid" in h and bool(h & {"attributes", "attribs"}),
    columns={
        "email": "email",
        "name": "name",
        "attributes": "attributes",
        "attribs": "attributes",
        "status": "status",
        "created_at": "consent_at",
        "uuid": "drop",
        "updated_at": "drop",
        "id": "drop",
    },
    statuses={
        "enabled": ACTIVE,
        "": ACTIVE,
        "disabled": suppress(UNSUBSCRIBED, "disabled in listmonk"),
        "blocklisted": suppress(UNSUBSCRIBED, "blocklisted in listmonk"),
    },
)

CSV = Format(
    "csv",
    recognize=lambda h: "email" in h,
    columns={
        "email": "email",
        "name": "name",
        "first_name": "first_name",
        "last_name": "last_name",
        "tags": "tags",
        "status": "status",
        "subscribed_at": "consent_at",
        "consent_at": "consent_at",
        **{column: "drop" for column in ("source", "consent_how", "consent_detail", "confirmed_at")},
    },
)

# Tried in this order: the most specific headers first, the plain CSV last.
FORMATS: dict[str, Format] = {f.name: f for f in (MAILCHIMP, LISTMONK, BUTTONDOWN, SUBSTACK, CSV)}


def detect(header: set[str]) -> Format | None:
    return next((f for f in FORMATS.values() if f.recognize(header)), None)
