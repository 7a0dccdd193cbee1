"""subscribers.unsubscribed_from: the status an unsubscribe ended

The undo offered on the unsubscribe-done page puts a subscription back as it was, so the
store keeps what it was (confirmed or pending) until the undo or the next subscribe. A
bounced or complained address is never put back: it has no value here.

Revision ID: sub_unsubscribed_from
Revises: i12_drop_rate_limits
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "sub_unsubscribed_from"
down_revision = "i12_drop_rate_limits"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unsubscribed_from", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("unsubscribed_from")
