"""rebalance proposals

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 12:51:47.585347
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "proposals",
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("as_of", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cash_before", poise.store.types.Exact(), nullable=False),
        sa.Column("cash_after", poise.store.types.Exact(), nullable=False),
        sa.Column("realised_short", poise.store.types.Exact(), nullable=False),
        sa.Column("realised_long", poise.store.types.Exact(), nullable=False),
        sa.Column("estimated_tax", poise.store.types.Exact(), nullable=False),
        sa.Column("cost", poise.store.types.Exact(), nullable=False),
        sa.Column("drift_before", poise.store.types.Exact(), nullable=False),
        sa.Column("drift_after", poise.store.types.Exact(), nullable=False),
        sa.Column("binding", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id", name=op.f("pk_proposals")),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposals_account_id"), ["account_id"], unique=False)

    op.create_table(
        "proposal_trades",
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("security_id", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("price", poise.store.types.Exact(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("lots", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"], ["proposals.proposal_id"], name=op.f("fk_proposal_trades_proposal_id")
        ),
        sa.PrimaryKeyConstraint("proposal_id", "seq", name=op.f("pk_proposal_trades")),
    )


def downgrade() -> None:

    op.drop_table("proposal_trades")
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposals_account_id"))

    op.drop_table("proposals")
