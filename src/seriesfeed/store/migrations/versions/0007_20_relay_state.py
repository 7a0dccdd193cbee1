"""relay_state: the relay's pause, one row shared by every sender process and node

A pause kept in a process (a global streak, per-row due times) was not seen by the next
``digest send``, the daemon or another node, and left rows waiting long after the relay
came back; one row in the store is the one clock they all read.

Revision ID: i20_relay_state
Revises: i21_parts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i20_relay_state"
down_revision = "i21_parts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "relay_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("refusal_key", sa.Text(), nullable=True),
        sa.Column("refusals", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_relay_state")),
    )
    op.bulk_insert(table, [{"id": 1, "refusals": 0}])


def downgrade() -> None:
    op.drop_table("relay_state")
