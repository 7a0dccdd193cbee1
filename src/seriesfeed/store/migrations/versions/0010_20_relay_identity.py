"""relay_state.relay: which relay configuration a pause belongs to

A pause built up against one relay configuration (a wrong password, a wrong port) held mail
for up to an hour after the operator fixed ``[smtp]``. The pause now names the configuration
it was recorded for (a keyed hash of the settings, never the password itself); a pause of
another configuration does not hold this one.

Revision ID: i20_relay_identity
Revises: i21_catch_up
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "i20_relay_identity"
down_revision = "i21_catch_up"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("relay_state") as batch:
        batch.add_column(sa.Column("relay", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("relay_state") as batch:
        batch.drop_column("relay")
