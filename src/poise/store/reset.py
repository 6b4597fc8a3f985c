"""What a store holds, table by table, and starting it over: every row of every poise
table dropped in one transaction, the schema kept. Only ``poise demo --reset`` calls
it; a firm's real books are never reset."""

from __future__ import annotations

import sqlalchemy as sa

from poise.store import tables as t

__all__ = ["FIRM_TABLES", "clear", "counts"]

# The tables whose rows make a firm: if any holds a row, the store holds a firm.
FIRM_TABLES = ("securities", "households", "accounts", "lots", "prices", "model_targets")


def counts(connection: sa.Connection) -> dict[str, int]:
    """Rows in every poise table, by table name, in dependency order."""
    return {
        table.name: connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        for table in t.metadata.sorted_tables
    }


def clear(connection: sa.Connection) -> dict[str, int]:
    """Delete every row of every poise table (dependents first); what was dropped."""
    dropped = counts(connection)
    for table in reversed(t.metadata.sorted_tables):
        connection.execute(sa.delete(table))
    return {name: rows for name, rows in dropped.items() if rows}
