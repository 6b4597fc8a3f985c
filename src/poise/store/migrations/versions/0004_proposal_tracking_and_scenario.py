"""proposals: tracking error before and after, the scenario, the risk model

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tracking_before", poise.store.types.Exact(), nullable=True))
        batch_op.add_column(sa.Column("tracking_after", poise.store.types.Exact(), nullable=True))
        batch_op.add_column(sa.Column("scenario", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("risk_model", sa.Text(), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_column("risk_model")
        batch_op.drop_column("scenario")
        batch_op.drop_column("tracking_after")
        batch_op.drop_column("tracking_before")
