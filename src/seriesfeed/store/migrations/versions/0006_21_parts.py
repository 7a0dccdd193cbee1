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

import re
import unicodedata
from collections.abc import Collection
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from alembic import op

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
        slug = _entry_slug(url, title, used)
        used.add(slug)
        conn.execute(sa.update(entries).where(entries.c.seq == seq).values(slug=slug))
    op.create_index("ix_entries_series_id_language_slug", "entries",
                    ["series_id", "language", "slug"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_entries_series_id_language_slug", table_name="entries")
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_column("slug")
        batch_op.drop_column("part")


# A frozen copy of the slug rule as this revision gives it (store/slugs.py and
# text.slugify at the time): a later change to the live rule must not change what this
# migration gives a store that reaches it later than others did.

def _slugify(value: str, max_length: int = 80) -> str:
    value = value.replace("\u2019", "").replace("'", "")
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug


def _entry_slug(url: str | None, title: str, taken: Collection[str]) -> str:
    """The URL's last path segment (without ``.html``), else the title; never digits
    only; ``-2``, ``-3`` … when ``taken`` has it."""
    segment = ""
    if url:
        path = urlsplit(url).path.rstrip("/")
        segment = _slugify(unquote(path.rsplit("/", 1)[-1])).removesuffix("-html")
        if segment.replace("-", "").isdigit():
            segment = ""
    base = segment or _slugify(title) or "article"
    slug, n = base, 2
    while slug in taken:
        slug, n = f"{base}-{n}", n + 1
    return slug
