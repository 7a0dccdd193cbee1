"""sources: polling state per configured source, which entries came from which source,
and entries held back until their publication time

Revision ID: i14_sources
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i14_sources"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("config_url", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("last_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("entries_added", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped", sa.Boolean(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sources")),
    )
    op.create_table(
        "source_entries",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("entry_id", sa.String(length=1000), nullable=False),
        sa.PrimaryKeyConstraint("source", "entry_id", name=op.f("pk_source_entries")),
    )
    op.create_table(
        "held_entries",
        sa.Column("entry_seq", sa.Integer(), nullable=False),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_seq"], ["entries.seq"],
                                name=op.f("fk_held_entries_entry_seq_entries"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entry_seq", name=op.f("pk_held_entries")),
    )
    with op.batch_alter_table("held_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_entries_release_at"), ["release_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("held_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_entries_release_at"))
    op.drop_table("held_entries")
    op.drop_table("source_entries")
    op.drop_table("sources")
