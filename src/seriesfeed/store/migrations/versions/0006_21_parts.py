"""A series as a series: each entry's part number (when an editor set it) and its slug

- entries.part: the part number an editor (or an import that states it) set; NULL means
  the number is computed from the originals' order of publication (store/parts.py)
- entries.slug: the entry's path segment under its series page, minted once from the
  URL's last path segment or the title, unique within series and language; existing rows
  are given one here, in the store's order, so the first stored keeps the plain slug

Added as plain columns and an index (no table rebuild): rebuilding ``entries`` on SQLite
would drop the table that authors and holds cascade from.

Revision ID: i21_parts
Revises: sub_unsubscribed_from
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from seriesfeed.store.slugs import entry_slug

revision = "i21_parts"
down_revision = "sub_unsubscribed_from"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("entries", sa.Column("part", sa.Integer(), nullable=True))
    op.add_column("entries", sa.Column("slug", sa.String(length=200), nullable=True))
    conn = op.get_bind()
    entries = sa.table("entries", sa.column("seq", sa.Integer), sa.column("series_id", sa.Integer),
                       sa.column("language", sa.String), sa.column("title", sa.Text),
                       sa.column("url", sa.String), sa.column("slug", sa.String))
    taken: dict[tuple[int, str], set[str]] = {}
    rows = conn.execute(sa.select(entries.c.seq, entries.c.series_id, entries.c.language,
                                  entries.c.title, entries.c.url).order_by(entries.c.seq)).all()
    for seq, series_id, language, title, url in rows:
        used = taken.setdefault((series_id, language), set())
        slug = entry_slug(url, title, used)
        used.add(slug)
        conn.execute(sa.update(entries).where(entries.c.seq == seq).values(slug=slug))
    op.create_index("ix_entries_series_id_language_slug", "entries",
                    ["series_id", "language", "slug"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_entries_series_id_language_slug", table_name="entries")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_column("slug")
        batch_op.drop_column("part")
