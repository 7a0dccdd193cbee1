"""The operator's console: its sessions, the login lockout, the audit trail, and each
source's poll history

The console's state lives in the store so that every node enforces one lockout and ends a
session everywhere at logout; the audit trail records who did what from where; a source's
history (the console's poll chart) needs one row per poll where ``sources`` keeps only the
last.

Revision ID: i24_admin
Revises: i20_relay_identity
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i24_admin"
down_revision = "i20_relay_identity"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "source_polls",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("status", sa.String(64)),
        sa.Column("added", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_source_polls_source_at", "source_polls", ["source", "at"])
    op.create_index("ix_source_polls_at", "source_polls", ["at"])
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "admin_login_failures",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "admin_audit",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(100), nullable=False),
        sa.Column("session", sa.String(64)),
        sa.Column("address", sa.String(64)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text()),
        sa.Column("detail", sa.Text()),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_admin_audit_at", "admin_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_admin_audit_at", "admin_audit")
    op.drop_table("admin_audit")
    op.drop_table("admin_login_failures")
    op.drop_table("admin_sessions")
    op.drop_index("ix_source_polls_at", "source_polls")
    op.drop_index("ix_source_polls_source_at", "source_polls")
    op.drop_table("source_polls")
