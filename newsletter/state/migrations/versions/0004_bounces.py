"""Bounces and complaints that came back after the send: the bounce_events table.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("diagnostic", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("identified", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("message_key", sa.String(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_key", "email", name="uq_bounce_event_report"),
    )
    op.create_index("ix_bounce_events_email", "bounce_events", ["email", "occurred_at"])
    op.create_index("ix_bounce_events_campaign", "bounce_events", ["campaign_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_bounce_events_campaign", table_name="bounce_events")
    op.drop_index("ix_bounce_events_email", table_name="bounce_events")
    op.drop_table("bounce_events")
