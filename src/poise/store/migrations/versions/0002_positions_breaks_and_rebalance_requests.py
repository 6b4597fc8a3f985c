"""positions, breaks and rebalance requests

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 12:05:52.852045
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "breaks",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("break_id", sa.String(length=64), nullable=False),
        sa.Column("opened", sa.Date(), nullable=False),
        sa.Column("closed", sa.Date(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "break_id", name=op.f("pk_breaks")),
    )
    op.create_table(
        "positions",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("security_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "as_of", "security_id", name=op.f("pk_positions")),
    )
    op.create_table(
        "rebalance_requests",
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=True),
        sa.Column("household_id", sa.String(length=64), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("as_of", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_rebalance_requests")),
    )
    with op.batch_alter_table("rebalance_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rebalance_requests_account_id"), ["account_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("rebalance_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rebalance_requests_account_id"))

    op.drop_table("rebalance_requests")
    op.drop_table("positions")
    op.drop_table("breaks")
