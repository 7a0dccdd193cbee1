"""An editor's fix of an entry's title or summary holds against its source

entries.title_pinned / entries.summary_pinned: true when an editor set that text (``entries
set --title/--summary`` or the console's entry page); a poll of the entry's source then
leaves it alone (invariant 14), as it leaves a part an editor set. False for every entry
stored before: nothing says an editor set those texts.

Revision ID: i24_entry_pins
Revises: i24_admin
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i24_entry_pins"
down_revision = "i24_admin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN in place: a batch copy would rebuild entries without AUTOINCREMENT on
    # SQLite, and a deleted entry's seq (the digest cursor) could be handed out again
    op.add_column("entries", sa.Column("title_pinned", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))
    op.add_column("entries", sa.Column("summary_pinned", sa.Boolean(), nullable=False,
                                       server_default=sa.false()))


def downgrade() -> None:
    # SQLite drops a column by copying the table: keep AUTOINCREMENT on the copy
    with op.batch_alter_table("entries", schema=None,
                              table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("summary_pinned")
        batch_op.drop_column("title_pinned")
