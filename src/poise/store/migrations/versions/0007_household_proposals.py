"""households: one allocation across their accounts; household proposals

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_id", sa.String(length=64), nullable=True))

    op.create_table(
        "household_proposals",
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", poise.store.types.UTCDateTime(), nullable=False),
        sa.Column("as_of", poise.store.types.UTCDateTime(), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.String(length=200), nullable=True),
        sa.Column("meetings", sa.Text(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("held", sa.Text(), nullable=False),
        sa.Column("superseded_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("proposal_id"),
    )
    with op.batch_alter_table("household_proposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_household_proposals_household_id"), ["household_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_household_proposals_run_id"), ["run_id"], unique=False)

    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("household_proposal_id", sa.String(length=200), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_proposals_household_proposal_id"),
            ["household_proposal_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposals_household_proposal_id"))
        batch_op.drop_column("household_proposal_id")

    with op.batch_alter_table("household_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_household_proposals_run_id"))
        batch_op.drop_index(batch_op.f("ix_household_proposals_household_id"))
    op.drop_table("household_proposals")

    with op.batch_alter_table("households", schema=None) as batch_op:
        batch_op.drop_column("model_id")
