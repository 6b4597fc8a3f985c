"""What a store holds, table by table, and starting it over: every row of every poise
table dropped in one transaction, the schema kept. Only ``poise demo --reset`` calls
it; a firm's real books are never reset. The audit ledger is never dropped: it is
append-only (its triggers refuse a DELETE), and it records the loads that follow."""

from __future__ import annotations

import sqlalchemy as sa

from poise.store import tables as t

__all__ = ["FIRM_TABLES", "KEPT_TABLES", "clear", "counts"]

# The tables whose rows make a firm: if any holds a row, the store holds a firm.
FIRM_TABLES = ("securities", "households", "accounts", "lots", "prices", "model_targets")
# The tables a reset leaves as they are: the audit ledger, appended to and never changed.
KEPT_TABLES = ("audit_entries", "audit_checkpoints")


def counts(connection: sa.Connection) -> dict[str, int]:
    """Rows in every poise table a reset drops, by table name, in dependency order."""
    return {
        table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in t.metadata.sorted_tables
        if table.name not in KEPT_TABLES
    }


def clear(connection: sa.Connection) -> dict[str, int]:
    """Delete every row of every poise table but the ledger's (dependents first); what
    was dropped."""
    dropped = counts(connection)
    for table in reversed(t.metadata.sorted_tables):
        if table.name not in KEPT_TABLES:
            connection.execute(sa.delete(table))
    return {name: rows for name, rows in dropped.items() if rows}
