"""Scheduled articles: what the scheduler decided for each article's send_at.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_sends",
        sa.Column("slug", sa.String(), nullable=False),
        sa.Column("send_at", sa.DateTime(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("slug", "send_at"),
    )


def downgrade() -> None:
    op.drop_table("scheduled_sends")
