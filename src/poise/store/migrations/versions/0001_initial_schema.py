"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 11:44:57.296419
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import poise.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "cash_flows",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", poise.store.types.Exact(), nullable=False),
        sa.Column("requested", sa.Date(), nullable=False),
        sa.Column("due", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "flow_id", name=op.f("pk_cash_flows")),
    )
    op.create_table(
        "households",
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("advisor", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_households")),
    )
    op.create_table(
        "ingest_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("loaded_at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_files")),
    )
    with op.batch_alter_table("ingest_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingest_files_sha256"), ["sha256"], unique=False)

    op.create_table(
        "lots",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("lot_id", sa.String(length=64), nullable=False),
        sa.Column("security_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("cost_basis", poise.store.types.Exact(), nullable=False),
        sa.Column("acquired", sa.Date(), nullable=False),
        sa.Column("adjusted_basis", poise.store.types.Exact(), nullable=True),
        sa.Column("holding_start", sa.Date(), nullable=True),
        sa.Column("disallowed_loss", poise.store.types.Exact(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "lot_id", name=op.f("pk_lots")),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lots_security_id"), ["security_id"], unique=False)

    op.create_table(
        "model_targets",
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.Text(), nullable=True),
        sa.Column("weight", poise.store.types.Exact(), nullable=False),
        sa.Column("band_abs", poise.store.types.Exact(), nullable=True),
        sa.Column("band_rel", poise.store.types.Exact(), nullable=True),
        sa.PrimaryKeyConstraint("model_id", "kind", "target_id", name=op.f("pk_model_targets")),
    )
    op.create_table(
        "prices",
        sa.Column("security_id", sa.String(length=64), nullable=False),
        sa.Column("as_of", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("price", poise.store.types.Exact(), nullable=False),
        sa.PrimaryKeyConstraint("security_id", "as_of", "source", name=op.f("pk_prices")),
    )
    op.create_table(
        "quarantine",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("line", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("quarantined_at", poise.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "line", name=op.f("pk_quarantine")),
    )
    op.create_table(
        "securities",
        sa.Column("security_id", sa.String(length=64), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("asset_class", sa.String(length=64), nullable=False),
        sa.Column("sub_class", sa.Text(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("trade_unit", sa.String(length=16), nullable=False),
        sa.Column("trade_step", poise.store.types.Exact(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("identity_group", sa.Text(), nullable=True),
        sa.Column("replacements", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("security_id", name=op.f("pk_securities")),
    )
    op.create_table(
        "transactions",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("txn_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.Column("settle_date", sa.Date(), nullable=False),
        sa.Column("security_id", sa.String(length=64), nullable=True),
        sa.Column("quantity", poise.store.types.Exact(), nullable=False),
        sa.Column("amount", poise.store.types.Exact(), nullable=False),
        sa.Column("lots", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "txn_id", name=op.f("pk_transactions")),
    )
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("registration", sa.String(length=32), nullable=False),
        sa.Column("custodian", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("model_id", sa.String(length=64), nullable=True),
        sa.Column("cash", poise.store.types.Exact(), nullable=False),
        sa.Column("reserve_amount", poise.store.types.Exact(), nullable=False),
        sa.Column("reserve_pct", poise.store.types.Exact(), nullable=False),
        sa.Column("do_not_buy", sa.Text(), nullable=True),
        sa.Column("do_not_sell", sa.Text(), nullable=True),
        sa.Column("excluded_tags", sa.Text(), nullable=True),
        sa.Column("st_rate", poise.store.types.Exact(), nullable=False),
        sa.Column("lt_rate", poise.store.types.Exact(), nullable=False),
        sa.Column("state_rate", poise.store.types.Exact(), nullable=False),
        sa.Column("harvest", sa.Boolean(), nullable=False),
        sa.Column("band_abs", poise.store.types.Exact(), nullable=True),
        sa.Column("band_rel", poise.store.types.Exact(), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.household_id"], name=op.f("fk_accounts_household_id")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_accounts_household_id"), ["household_id"], unique=False
        )

    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("risk_tolerance", sa.String(length=32), nullable=False),
        sa.Column("horizon_years", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=True),
        sa.Column("goals", sa.Text(), nullable=True),
        sa.Column("exclusions", sa.Text(), nullable=True),
        sa.Column("esg", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"], ["households.household_id"], name=op.f("fk_clients_household_id")
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_clients")),
    )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clients_household_id"), ["household_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clients_household_id"))

    op.drop_table("clients")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_household_id"))

    op.drop_table("accounts")
    op.drop_table("transactions")
    op.drop_table("securities")
    op.drop_table("quarantine")
    op.drop_table("prices")
    op.drop_table("model_targets")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lots_security_id"))

    op.drop_table("lots")
    with op.batch_alter_table("ingest_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingest_files_sha256"))

    op.drop_table("ingest_files")
    op.drop_table("households")
    op.drop_table("cash_flows")
