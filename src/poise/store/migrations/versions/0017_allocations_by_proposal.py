"""allocations by proposal: what a proposal's trades have been allocated is looked up
by the proposal when booking marks it executed — an index, so that the lookup does not
read every allocation the firm has made

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 13:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_allocations_proposal_id"), "allocations", ["proposal_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_allocations_proposal_id"), table_name="allocations")
