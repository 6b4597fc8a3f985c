"""booked allocations: when an allocation went into the books is kept in a table of its
own, written once, rather than by updating the allocation's row — a booking of
100,000 fills rewrote 100,000 wide rows and their three indexes on PostgreSQL (most of
its time keeping what it booked); allocations are now only ever inserted

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booked_allocations",
        sa.Column("block_id", sa.String(length=128), nullable=False),
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("booked_at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "block_id", "proposal_id", "seq", name=op.f("pk_booked_allocations")
        ),
    )
    op.execute(
        "INSERT INTO booked_allocations (block_id, proposal_id, seq, booked_at)"
        " SELECT block_id, proposal_id, seq, booked_at FROM allocations"
        " WHERE booked_at IS NOT NULL"
    )
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_column("booked_at")


def downgrade() -> None:
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("booked_at", poise.store.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE allocations SET booked_at = (SELECT k.booked_at FROM booked_allocations AS k"
        " WHERE k.block_id = allocations.block_id AND k.proposal_id = allocations.proposal_id"
        " AND k.seq = allocations.seq)"
    )
    op.drop_table("booked_allocations")
