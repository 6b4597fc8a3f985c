"""accounts: the smallest trade, overriding the firm's, in dollars and of the account

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("min_trade", poise.store.types.Exact(), nullable=True))
        batch_op.add_column(sa.Column("min_trade_pct", poise.store.types.Exact(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("min_trade_pct")
        batch_op.drop_column("min_trade")
