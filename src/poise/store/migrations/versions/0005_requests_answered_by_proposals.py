"""requests: the proposal that answered each; proposals: the one that superseded each

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    with op.batch_alter_table("rebalance_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answered_by", sa.String(length=200), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_rebalance_requests_answered_by"), ["answered_by"], unique=False
        )

    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("superseded_by", sa.String(length=200), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_column("superseded_by")

    with op.batch_alter_table("rebalance_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rebalance_requests_answered_by"))
        batch_op.drop_column("answered_by")
