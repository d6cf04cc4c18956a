"""Message-IDs per campaign and recipient: campaigns.message_key, stored when a campaign is made.

Campaigns made before keep the Message-IDs they were sent with (key, content hash and round), so a
resume of one and the bounces that quote one still match.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("message_key", sa.String(), nullable=False, server_default=""))
    op.execute(
        "UPDATE campaigns SET message_key = key || ':' || content_hash"
        " || CASE WHEN round = 1 THEN '' ELSE ':' || 'r' || CAST(round AS VARCHAR) END"  # ':r' would be a bind
    )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("message_key")
