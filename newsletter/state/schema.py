"""Every table of the state database, in one place; Alembic's migrations (state/migrations) build the same.

Times are naive UTC. Statuses are stored as the text of the StrEnums in statuses.py.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String, nullable=False),  # issue key: article slug or digest period
    Column("content_hash", String, nullable=False),
    Column("round", Integer, nullable=False, default=1),  # 2, 3... after --resend
    Column("subject", String, nullable=False, default=""),
    Column("title", String, nullable=False, default=""),
    Column("status", String, nullable=False, default="sending"),
    Column("runs", Integer, nullable=False, default=0),  # send runs so far (resumes included)
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    # What its Message-IDs derive from, with the address: the key (a resumed or edited version keeps it,
    # so a receiver drops a copy a crash duplicated), ":r<n>" added for a --resend or an edit sent to all.
    Column("message_key", String, nullable=False, default=""),
    UniqueConstraint("key", "content_hash", "round", name="uq_campaign_identity"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("email_key", String, nullable=False),  # lower-cased, the identity
    Column("email", String, nullable=False),  # as written in the list
    Column("name", String, nullable=False, default=""),
    Column("fields", Text, nullable=False, default="{}"),  # every list column, JSON
    Column("line", Integer, nullable=False, default=0),
    Column("status", String, nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_reply", String, nullable=False, default=""),
    Column("seen_run", Integer, nullable=False, default=0),  # last run whose list had this address
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    UniqueConstraint("campaign_id", "email_key", name="uq_delivery_address"),
)
Index("ix_deliveries_campaign_status", deliveries.c.campaign_id, deliveries.c.status, deliveries.c.id)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email", String, primary_key=True),  # lower-cased
    Column("reason", String, nullable=False),
    Column("detail", String, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
)

# One lock table for every process that must work alone: a campaign's sender, the digest scheduler.
locks = Table(
    "locks",
    metadata,
    Column("name", String, primary_key=True),  # "campaign:<key>", "digest"
    Column("owner", String, nullable=False),  # "<host>:<pid>:<random>"
    Column("host", String, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", DateTime, nullable=False),
    Column("heartbeat_at", DateTime, nullable=False),
)

digests = Table(
    "digests",
    metadata,
    Column("key", String, primary_key=True),  # digest-2026-W48, also the campaign key
    Column("since", DateTime, nullable=False),  # the window is (since, until]
    Column("until", DateTime, nullable=False),  # the next digest's window starts here
    Column("run_time", DateTime),  # scheduled time, when it came from the schedule
    Column("status", String, nullable=False),  # pending | sent
    Column("recipients", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
)

digest_articles = Table(
    "digest_articles",
    metadata,
    Column("digest_key", String, ForeignKey("digests.key", ondelete="CASCADE"), primary_key=True),
    Column("slug", String, primary_key=True),
    Column("position", Integer, nullable=False),
)

schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("run_time", DateTime, primary_key=True),  # the scheduled time (not when it ran)
    Column("digest_key", String, nullable=False),  # the run's campaign key: its digest, or ("each") an article
    Column("decision", String, nullable=False),  # statuses.RunDecision
    Column("decided_at", DateTime, nullable=False),
)

# What the scheduler decided for an article's own send_at (sent, already sent, missed by more than catch_up).
scheduled_sends = Table(
    "scheduled_sends",
    metadata,
    Column("slug", String, primary_key=True),
    Column("send_at", DateTime, primary_key=True),  # the article's send_at when decided: a new one is a new send
    Column("decision", String, nullable=False),  # statuses.RunDecision
    Column("decided_at", DateTime, nullable=False),
)

# Bounces and complaints that came back after the send (newsletter/bounces): one row per address a
# report named. A report counts once: (message_key, email) is unique, so a rerun or a crash between
# recording and moving the message never counts it twice.
bounce_events = Table(
    "bounce_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String, nullable=False),  # lower-cased
    Column("kind", String, nullable=False),  # statuses.BounceKind
    Column("campaign_id", Integer, ForeignKey("campaigns.id", ondelete="SET NULL")),  # None: a test send, unknown
    Column("status", String, nullable=False, default=""),  # 5.1.1, 4.2.2, or the feedback type (abuse)
    Column("diagnostic", String, nullable=False, default=""),  # the remote server's words, one line
    Column("source", String, nullable=False, default=""),  # how the report was read: dsn, arf, ses, heuristic
    Column("identified", String, nullable=False, default=""),  # how the recipient was found: token, report...
    Column("action", String, nullable=False, default=""),  # what the rules did: "suppressed", "soft 2 of 3"...
    Column("message_key", String, nullable=False),  # the report's identity (a hash of its Message-ID or bytes)
    Column("occurred_at", DateTime, nullable=False),  # when the report says it happened
    Column("recorded_at", DateTime, nullable=False),
    UniqueConstraint("message_key", "email", name="uq_bounce_event_report"),
)
Index("ix_bounce_events_email", bounce_events.c.email, bounce_events.c.occurred_at)
Index("ix_bounce_events_campaign", bounce_events.c.campaign_id, bounce_events.c.kind)
# The list: one row per address, whatever brought it in (the CSV, an import, a signup, the operator).
subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email_key", String, nullable=False),  # lower-cased, the identity
    Column("email", String, nullable=False),  # as it is sent to
    Column("name", String, nullable=False, default=""),
    Column("first_name", String, nullable=False, default=""),
    Column("status", String, nullable=False),  # statuses.SubscriberStatus
    Column("source", String, nullable=False),  # statuses.SubscriberSource: who owns the row
    Column("fields", Text, nullable=False, default="{}"),  # what templates see as subscriber.<key>, JSON
    Column("line", Integer, nullable=False, default=0),  # the CSV line, for messages
    # The consent record: how and when, the confirmation of a signup, the signup's address as a keyed hash.
    Column("consent_how", String, nullable=False),
    Column("consent_at", DateTime, nullable=False),
    Column("consent_detail", String, nullable=False, default=""),
    Column("confirmed_at", DateTime),
    Column("consent_ip", String, nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("email_key", name="uq_subscriber_address"),
)
Index("ix_subscribers_status", subscribers.c.status, subscribers.c.id)

subscriber_tags = Table(
    "subscriber_tags",
    metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String, primary_key=True),  # lower-case
)
Index("ix_subscriber_tags_tag", subscriber_tags.c.tag, subscriber_tags.c.subscriber_id)

# Names of the custom fields subscribers carry (templates may use them as subscriber.<name>).
subscriber_fields = Table(
    "subscriber_fields",
    metadata,
    Column("name", String, primary_key=True),
)

# Addresses erased by `subscribers remove`: only a one-way hash, so they cannot come back by an import.
erasures = Table(
    "erasures",
    metadata,
    Column("email_hash", String, primary_key=True),
    Column("created_at", DateTime, nullable=False),
)

# Fixed-window counters shared by every `serve` replica: signups per client, confirmation mails per address.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("bucket", String, primary_key=True),  # "<kind>:<keyed hash>"
    Column("hits", Integer, nullable=False),
    Column("window_start", DateTime, nullable=False),
)

# A blog's feed as `newsletter feed pull` last read it: its validators for the next conditional GET, and
# when it was first pulled (in [feed] mode "each", only posts that came after that go out on their own).
feeds = Table(
    "feeds",
    metadata,
    Column("url", String, primary_key=True),  # the URL, or the local file's absolute path
    Column("etag", String, nullable=False, default=""),
    Column("last_modified", String, nullable=False, default=""),
    Column("first_pulled_at", DateTime, nullable=False),
    Column("last_pulled_at", DateTime, nullable=False),
)

# Every feed entry ever written to the issues folder, by its id (guid): never written twice, and an
# update in the feed rewrites the file only while it still has the bytes the pull wrote (written_hash).
feed_entries = Table(
    "feed_entries",
    metadata,
    Column("source_id", String, primary_key=True),
    Column("feed", String, nullable=False),  # feeds.url it came from (last)
    Column("path", String, nullable=False),  # the file's name in the issues folder
    Column("written_hash", String, nullable=False),  # SHA-256 of the file as the pull wrote it
    Column("fingerprint", String, nullable=False),  # SHA-256 of the entry as the feed gave it
    Column("pulled_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)
