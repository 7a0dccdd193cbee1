"""A late reader starts at part 1: the reader's choice and their catch-up cursor

- subscribers.start: "first" (the back catalogue from part 1, once confirmed) or "new"
- catch_ups: per reader and series, the next part to send, the back catalogue's end and
  the slot that last sent one; advanced in the transaction that queues the part's outbox
  row, whose Message-ID is fixed per (reader, series, part)

Revision ID: i21_catch_up
Revises: i23_nodes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i21_catch_up"
down_revision = "i23_nodes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscribers", sa.Column("start", sa.String(length=8), nullable=False,
                                           server_default="new"))
    op.create_table(
        "catch_ups",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("next_part", sa.Integer(), nullable=False),
        sa.Column("upto_seq", sa.Integer(), nullable=False),
        sa.Column("last_period", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"],
                                name=op.f("fk_catch_ups_series_id_series"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"],
                                name=op.f("fk_catch_ups_subscriber_id_subscribers"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id", "series_id", name=op.f("pk_catch_ups")),
    )


def downgrade() -> None:
    op.drop_table("catch_ups")
    # a plain DROP COLUMN (SQLite 3.35+), never a batch rebuild: dropping the rebuilt
    # subscribers table would cascade to the series they follow and their outbox rows
    op.drop_column("subscribers", "start")
