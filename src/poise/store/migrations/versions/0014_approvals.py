"""approvals: who prepared a proposal and why it ended as it did; its findings, each
with who cleared it, and its approvers

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_PROPOSALS = ("proposals", "household_proposals")


def upgrade() -> None:
    for table in _PROPOSALS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("prepared_by", sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
    op.create_table(
        "proposal_findings",
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("finding_id", sa.String(length=64), nullable=False),
        sa.Column("blocks", sa.Boolean(), nullable=False),
        sa.Column("rule_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("cleared_by", sa.String(length=64), nullable=True),
        sa.Column("cleared_at", poise.store.types.UTCDateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("proposal_id", "finding_id", name=op.f("pk_proposal_findings")),
    )
    op.create_table(
        "proposal_approvals",
        sa.Column("proposal_id", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("at", poise.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id", "number", name=op.f("pk_proposal_approvals")),
        sa.UniqueConstraint("proposal_id", "user_id", name="uq_proposal_approvals_approver"),
    )


def downgrade() -> None:
    op.drop_table("proposal_approvals")
    op.drop_table("proposal_findings")
    for table in reversed(_PROPOSALS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("status_reason")
            batch_op.drop_column("prepared_by")
