"""execution: batches of released proposals, their crosses, block orders with written
allocation statements, the orders and their outbox, execution reports booked once,
allocations, breaks, and the FIX sessions' sequence numbers and sent messages; and each
account's consent to cross trades

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "allocations",
        sa.Column("block_id", sa.String(length=128), nullable=False),
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("price", poise.store.types.Exact(), nullable=False),
        sa.Column("gross", poise.store.types.Exact(), nullable=False),
        sa.Column("commission", poise.store.types.Exact(), nullable=False),
        sa.Column("net", poise.store.types.Exact(), nullable=False),
        sa.Column("lots", sa.Text(), nullable=False),
        sa.Column("at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("block_id", "proposal_id", "seq", name=op.f("pk_allocations")),
    )
    op.create_index(op.f("ix_allocations_account_id"), "allocations", ["account_id"], unique=False)
    op.create_table(
        "batch_proposals",
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id", name=op.f("pk_batch_proposals")),
    )
    op.create_index(
        op.f("ix_batch_proposals_batch_id"), "batch_proposals", ["batch_id"], unique=False
    )
    op.create_table(
        "block_orders",
        sa.Column("block_id", sa.String(length=128), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("security_id", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("ord_type", sa.String(length=8), nullable=False),
        sa.Column("limit_price", poise.store.types.Exact(), nullable=True),
        sa.Column("reference", poise.store.types.Exact(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filled", poise.store.types.Exact(), nullable=False),
        sa.Column("allocated_at", poise.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("block_id", name=op.f("pk_block_orders")),
    )
    op.create_index(op.f("ix_block_orders_batch_id"), "block_orders", ["batch_id"], unique=False)
    op.create_table(
        "cross_legs",
        sa.Column("cross_id", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("lots", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("cross_id", "number", name=op.f("pk_cross_legs")),
    )
    op.create_index(op.f("ix_cross_legs_proposal_id"), "cross_legs", ["proposal_id"], unique=False)
    op.create_table(
        "crosses",
        sa.Column("cross_id", sa.String(length=128), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("security_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("price", poise.store.types.Exact(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("price_at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("cross_id", name=op.f("pk_crosses")),
    )
    op.create_index(op.f("ix_crosses_batch_id"), "crosses", ["batch_id"], unique=False)
    op.create_table(
        "execution_batches",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_execution_batches")),
    )
    op.create_table(
        "execution_breaks",
        sa.Column("break_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("break_id", name=op.f("pk_execution_breaks")),
    )
    op.create_table(
        "executions",
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("exec_id", sa.String(length=64), nullable=False),
        sa.Column("cl_ord_id", sa.String(length=64), nullable=False),
        sa.Column("exec_type", sa.String(length=4), nullable=False),
        sa.Column("ord_status", sa.String(length=4), nullable=False),
        sa.Column("last_qty", poise.store.types.Exact(), nullable=False),
        sa.Column("last_px", poise.store.types.Exact(), nullable=False),
        sa.Column("cum_qty", poise.store.types.Exact(), nullable=False),
        sa.Column("leaves_qty", poise.store.types.Exact(), nullable=False),
        sa.Column("received_at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("route", "exec_id", name=op.f("pk_executions")),
    )
    op.create_index(op.f("ix_executions_cl_ord_id"), "executions", ["cl_ord_id"], unique=False)
    op.create_table(
        "fix_messages",
        sa.Column("session_key", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("session_key", "seq", name=op.f("pk_fix_messages")),
    )
    op.create_table(
        "fix_sessions",
        sa.Column("session_key", sa.String(length=200), nullable=False),
        sa.Column("next_sender", sa.Integer(), nullable=False),
        sa.Column("next_target", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("session_key", name=op.f("pk_fix_sessions")),
    )
    op.create_table(
        "orders",
        sa.Column("cl_ord_id", sa.String(length=64), nullable=False),
        sa.Column("block_id", sa.String(length=128), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("orig_cl_ord_id", sa.String(length=64), nullable=True),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("limit_price", poise.store.types.Exact(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("broker_order_id", sa.String(length=64), nullable=True),
        sa.Column("filled", poise.store.types.Exact(), nullable=False),
        sa.Column("created_at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", poise.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acked_at", poise.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("cl_ord_id", name=op.f("pk_orders")),
    )
    op.create_index(op.f("ix_orders_block_id"), "orders", ["block_id"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("outbox_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cl_ord_id", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("sent_seq", sa.Integer(), nullable=True),
        sa.Column("sent_at", poise.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("outbox_id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("cl_ord_id", name=op.f("uq_outbox_cl_ord_id")),
    )
    op.create_index(op.f("ix_outbox_route"), "outbox", ["route"], unique=False)
    op.create_table(
        "statement_lines",
        sa.Column("block_id", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("lots", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("block_id", "number", name=op.f("pk_statement_lines")),
    )
    op.create_index(
        op.f("ix_statement_lines_proposal_id"), "statement_lines", ["proposal_id"], unique=False
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cross_consent", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("cross_consent")
    op.drop_index(op.f("ix_statement_lines_proposal_id"), table_name="statement_lines")
    op.drop_table("statement_lines")
    op.drop_index(op.f("ix_outbox_route"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_orders_block_id"), table_name="orders")
    op.drop_table("orders")
    op.drop_table("fix_sessions")
    op.drop_table("fix_messages")
    op.drop_index(op.f("ix_executions_cl_ord_id"), table_name="executions")
    op.drop_table("executions")
    op.drop_table("execution_breaks")
    op.drop_table("execution_batches")
    op.drop_index(op.f("ix_crosses_batch_id"), table_name="crosses")
    op.drop_table("crosses")
    op.drop_index(op.f("ix_cross_legs_proposal_id"), table_name="cross_legs")
    op.drop_table("cross_legs")
    op.drop_index(op.f("ix_block_orders_batch_id"), table_name="block_orders")
    op.drop_table("block_orders")
    op.drop_index(op.f("ix_batch_proposals_batch_id"), table_name="batch_proposals")
    op.drop_table("batch_proposals")
    op.drop_index(op.f("ix_allocations_account_id"), table_name="allocations")
    op.drop_table("allocations")
