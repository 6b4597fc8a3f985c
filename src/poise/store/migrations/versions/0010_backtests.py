"""backtests: what each was asked, and each method's figures, years and wealth

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backtests",
        sa.Column("backtest_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", poise.store.types.UTCDateTime(), nullable=False),
        sa.Column("prices_file", sa.Text(), nullable=False),
        sa.Column("prices_digest", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("backtest_id", name=op.f("pk_backtests")),
    )
    op.create_table(
        "backtest_methods",
        sa.Column("backtest_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("years", sa.Text(), nullable=False),
        sa.Column("series", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["backtest_id"],
            ["backtests.backtest_id"],
            name=op.f("fk_backtest_methods_backtest_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("backtest_id", "method", name=op.f("pk_backtest_methods")),
    )


def downgrade() -> None:
    op.drop_table("backtest_methods")
    op.drop_table("backtests")
