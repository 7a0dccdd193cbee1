"""drop the rate_limits table, which nothing used

The subscribe form's limiter is in memory (web/subscribe.py RateLimiter): one web process
serves a store, and the one-day limit per address that matters across restarts is kept on
the subscriber (confirm_sent_at). The table and its queries were dead code.

Revision ID: i12_drop_rate_limits
Revises: i16_ops
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i12_drop_rate_limits"
down_revision = "i16_ops"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rate_limits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_limits_expires_at"))
    op.drop_table("rate_limits")


def downgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limits")),
    )
    with op.batch_alter_table("rate_limits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rate_limits_expires_at"), ["expires_at"], unique=False
        )
