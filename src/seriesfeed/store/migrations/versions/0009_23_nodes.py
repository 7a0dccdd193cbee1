"""leadership and nodes: several daemons on one PostgreSQL store, one leading the schedule

The leader's lease is one row (holder, epoch, expiry on the database's clock) so that every
node reads the same truth; the nodes table carries each daemon's heartbeat for status.

Revision ID: i23_nodes
Revises: i20_relay_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i23_nodes"
down_revision = "i20_relay_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "leadership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leadership")),
    )
    op.bulk_insert(table, [{"id": 1, "epoch": 0}])
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_nodes")),
    )


def downgrade() -> None:
    op.drop_table("nodes")
    op.drop_table("leadership")
