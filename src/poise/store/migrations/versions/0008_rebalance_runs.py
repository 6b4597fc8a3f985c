"""rebalance runs: a firm-wide run, and each household it finished or failed

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 11:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rebalance_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", poise.store.types.UTCDateTime(), nullable=False),
        sa.Column("finished_at", poise.store.types.UTCDateTime(), nullable=True),
        sa.Column("as_of", poise.store.types.UTCDateTime(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("selection", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_rebalance_runs")),
    )
    op.create_table(
        "run_households",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("household_proposal_id", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("finished_at", poise.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["rebalance_runs.run_id"], name=op.f("fk_run_households_run_id")
        ),
        sa.PrimaryKeyConstraint("run_id", "household_id", name=op.f("pk_run_households")),
    )


def downgrade() -> None:
    op.drop_table("run_households")
    op.drop_table("rebalance_runs")
