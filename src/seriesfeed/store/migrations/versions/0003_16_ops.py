"""what operating a list needs on outbox rows and subscribers

- outbox.note: what happened to the row besides its state (operator retries, bounces)
- outbox.operator_retries: how many times an operator put the row back to queued
- outbox.bounce: what came back after the relay's 250 (hard, soft or complaint)
- outbox.bounced_at: when that report was processed
- subscribers.soft_bounces: transient failures reported after delivery

Revision ID: i16_ops
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i16_ops"
down_revision = "i14_sources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("operator_retries", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("bounce", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("soft_bounces", sa.Integer(), nullable=False,
                                      server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("soft_bounces")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("bounced_at")
        batch_op.drop_column("bounce")
        batch_op.drop_column("operator_retries")
        batch_op.drop_column("note")
