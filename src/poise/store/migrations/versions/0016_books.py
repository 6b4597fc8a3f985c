"""books: fills into the books — each allocation and cross leg marked when booked,
what each sale realised lot by lot, the lots sales emptied, and each account's relief
method; custodian reconciliation — the custodian's prices and cash, and breaks typed,
with their causes and how they were resolved

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "realised_gains",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("txn_id", sa.String(length=64), nullable=False),
        sa.Column("lot_id", sa.String(length=64), nullable=False),
        sa.Column("security_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("proceeds", poise.store.types.Exact(), nullable=False),
        sa.Column("basis", poise.store.types.Exact(), nullable=False),
        sa.Column("cost", poise.store.types.Exact(), nullable=False),
        sa.Column("acquired", sa.Date(), nullable=False),
        sa.Column("held_since", sa.Date(), nullable=False),
        sa.Column("sold", sa.Date(), nullable=False),
        sa.Column("term", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "txn_id", "lot_id", name=op.f("pk_realised_gains")),
    )
    op.create_table(
        "closed_lots",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("lot_id", sa.String(length=64), nullable=False),
        sa.Column("security_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("cost_basis", poise.store.types.Exact(), nullable=False),
        sa.Column("acquired", sa.Date(), nullable=False),
        sa.Column("adjusted_basis", poise.store.types.Exact(), nullable=True),
        sa.Column("holding_start", sa.Date(), nullable=True),
        sa.Column("disallowed_loss", poise.store.types.Exact(), nullable=False),
        sa.Column("closed", sa.Date(), nullable=False),
        sa.Column("closed_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "lot_id", name=op.f("pk_closed_lots")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("relief_method", sa.String(length=16), nullable=True))
    for table in ("allocations", "cross_legs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("booked_at", poise.store.types.UTCDateTime(timezone=True), nullable=True)
            )
    op.create_table(
        "custodian_cash",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("cash", poise.store.types.Exact(), nullable=False),
        sa.Column("trade_date_cash", poise.store.types.Exact(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "as_of", name=op.f("pk_custodian_cash")),
    )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("price", poise.store.types.Exact(), nullable=True))
    with op.batch_alter_table("breaks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("security_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("books", poise.store.types.Exact(), nullable=True))
        batch_op.add_column(sa.Column("custodian", poise.store.types.Exact(), nullable=True))
        batch_op.add_column(sa.Column("cause", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("breaks", schema=None) as batch_op:
        for column in ("reason", "resolved_by", "cause", "custodian", "books", "security_id",
                       "kind"):  # fmt: skip
            batch_op.drop_column(column)
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_column("price")
    op.drop_table("custodian_cash")
    for table in ("cross_legs", "allocations"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("booked_at")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("relief_method")
    op.drop_table("closed_lots")
    op.drop_table("realised_gains")
