"""An attacker with the database in hand, for the tests that check the ledger names
what they did: the append-only triggers dropped (as the database's owner may), then
rows rewritten with plain SQL — nothing of poise's."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["edit_entry", "unguard"]


def unguard(connection: sa.Connection) -> None:
    """Drop the triggers that keep the ledger's two tables append-only."""
    if connection.dialect.name == "postgresql":
        for table in ("audit_entries", "audit_checkpoints"):
            connection.exec_driver_sql(f"DROP TRIGGER {table}_append_only ON {table}")
    else:
        for table in ("audit_entries", "audit_checkpoints"):
            for what in ("update", "delete"):
                connection.exec_driver_sql(f"DROP TRIGGER {table}_no_{what}")


def edit_entry(engine: sa.Engine, *, seq: int, reason: str) -> None:
    """Entry ``seq``'s reason rewritten in place, its hashes left as they were."""
    with engine.begin() as connection:
        unguard(connection)
        connection.execute(
            sa.text("UPDATE audit_entries SET reason = :reason WHERE seq = :seq"),
            {"reason": reason, "seq": seq},
        )
