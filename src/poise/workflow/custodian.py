"""Custodian reconciliation (``poise reconcile``, ``poise breaks``): each account's
custodian snapshot of a day against the books as they stood at that day's end, the
breaks kept — an account with an open break is held by the monitor and not traded —
and breaks resolved by people with a reason, each step in the audit ledger."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from poise.audit.ledger import Record, append_many
from poise.domain.calendar import trade_date
from poise.domain.errors import ConflictError, NotFoundError
from poise.domain.money import ZERO
from poise.domain.orders import Side
from poise.domain.transactions import TxnKind
from poise.reconcile.positions import Break, Pending, Snapshot, compare
from poise.report.client import EFFECTS
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import WRITES
from poise.store.repo.fills import unbooked

__all__ = ["Reconciled", "latest_snapshot_day", "reconcile_custodian", "resolve_break"]

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What one reconciliation found: the day, the accounts compared, the breaks found
    (new or still open), and those it closed."""

    as_of: date | None = None
    accounts: int = 0
    breaks: tuple[Break, ...] = field(default=())
    opened: int = 0
    cleared: int = 0


def break_id(found: Break, as_of: date) -> str:
    return f"{found.kind.value}:{found.security_id or 'cash'}:{as_of.isoformat()}"


def latest_snapshot_day(connection: sa.Connection) -> date | None:
    days = [
        connection.execute(sa.select(sa.func.max(table.c.as_of))).scalar()
        for table in (t.positions, t.custodian_cash)
    ]
    known = [d for d in days if d is not None]
    return max(known) if known else None


def _snapshots(connection: sa.Connection, as_of: date) -> dict[str, Snapshot]:
    p, c = t.positions, t.custodian_cash
    held: dict[str, dict[str, Decimal]] = {}
    priced: dict[str, dict[str, Decimal]] = {}
    for row in connection.execute(sa.select(p).where(p.c.as_of == as_of)):
        held.setdefault(row.account_id, {})[row.security_id] = row.quantity
        if row.price is not None:
            priced.setdefault(row.account_id, {})[row.security_id] = row.price
    cash = {
        row.account_id: row for row in connection.execute(sa.select(c).where(c.c.as_of == as_of))
    }
    return {
        a: Snapshot(
            account_id=a,
            positions=held.get(a, {}),
            prices=priced.get(a, {}),
            cash=cash[a].cash if a in cash else None,
            trade_date_cash=cash[a].trade_date_cash if a in cash else None,
        )
        for a in sorted(set(held) | set(cash))
    }


def _books_at(
    connection: sa.Connection, accounts: Sequence[str], as_of: date
) -> tuple[dict[str, dict[str, Decimal]], dict[str, Decimal], dict[str, list[Pending]]]:
    """Each account's shares and trade-date cash at the end of ``as_of`` (today's
    books with what was traded after it undone), and its trades still to settle then."""
    wanted = set(accounts)
    shares: dict[str, dict[str, Decimal]] = {a: {} for a in accounts}
    for lot in repo.lots(connection, account_ids=accounts):
        mine = shares[lot.account_id]
        mine[lot.security_id] = mine.get(lot.security_id, ZERO) + lot.quantity
    a = t.accounts
    cash = {
        r.account_id: r.cash
        for r in connection.execute(
            sa.select(a.c.account_id, a.c.cash).where(a.c.account_id.in_(accounts))
        )
    }
    x = t.transactions
    unsettled: dict[str, list[Pending]] = {}
    for row in connection.execute(
        sa.select(x).where((x.c.trade_date > as_of) | (x.c.settle_date > as_of))
    ):
        if row.account_id not in wanted:
            continue
        effect = EFFECTS[TxnKind(row.kind)]
        moved_cash = effect.cash * row.amount
        if row.trade_date > as_of:  # after the snapshot's day: undone
            if effect.shares and row.security_id:
                mine = shares[row.account_id]
                mine[row.security_id] = (
                    mine.get(row.security_id, ZERO) - effect.shares * row.quantity
                )
            cash[row.account_id] -= moved_cash
        elif moved_cash:  # traded by then, settling after
            unsettled.setdefault(row.account_id, []).append(
                Pending(row.account_id, row.txn_id, row.security_id, ZERO, moved_cash)
            )
    held = {k: {s: q for s, q in v.items() if q != ZERO} for k, v in shares.items()}
    return held, cash, unsettled


def reconcile_custodian(
    engine: sa.Engine,
    *,
    as_of: date | None = None,
    tolerance: Decimal = Decimal("0.01"),
    at: datetime | None = None,
) -> Reconciled:
    """Compare every account with a custodian snapshot on ``as_of`` (None: the latest
    day any snapshot was loaded for) with the books. Each break found is kept open
    (once a day); a break of an earlier day, or of this day, that no longer holds is
    closed — by the system, with why."""
    at = at or datetime.now(UTC)
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        as_of = as_of or latest_snapshot_day(connection)
        if as_of is None:
            return Reconciled()
        snapshots = _snapshots(connection, as_of)
        accounts = sorted(snapshots)
        held, cash, unsettled = _books_at(connection, accounts, as_of)
        waiting: dict[str, list[Pending]] = {}
        for execution, _ in unbooked(connection, account_ids=accounts):
            sign = 1 if execution.side is Side.BUY else -1
            waiting.setdefault(execution.account_id, []).append(
                Pending(execution.account_id, execution.txn_id, execution.security_id,
                        sign * execution.quantity, -sign * execution.net)
            )  # fmt: skip
        known = set(repo.securities(connection))
        day_end = datetime.combine(as_of + timedelta(days=1), time(), tzinfo=UTC)
        prices = {s: p for s, (p, _) in repo.latest_prices(connection, as_of=day_end).items()}
        found: list[Break] = []
        for account in accounts:
            found += compare(
                snapshots[account], books=held.get(account, {}), books_cash=cash.get(account, ZERO),
                known=known, unbooked=waiting.get(account, []),
                unsettled=unsettled.get(account, []), prices=prices, tolerance=tolerance,
            )  # fmt: skip
        opened, cleared, entries = _keep(connection, found, accounts, as_of, at)
        append_many(connection, entries)
    return Reconciled(as_of, len(accounts), tuple(found), opened, cleared)


def _keep(
    connection: sa.Connection, found: Sequence[Break], accounts: Sequence[str], as_of: date,
    at: datetime,
) -> tuple[int, int, list[Record]]:  # fmt: skip
    b = t.breaks
    ids = {(f.account_id, break_id(f, as_of)): f for f in found}
    stored = {
        (r.account_id, r.break_id): r
        for r in connection.execute(
            sa.select(b).where(b.c.account_id.in_(accounts) & b.c.kind.is_not(None))
        )
    }
    entries: list[Record] = []
    fresh = [key for key in ids if key not in stored]
    if fresh:
        connection.execute(
            sa.insert(b),
            [
                {"account_id": a, "break_id": k, "opened": as_of, "closed": None,
                 "description": ids[(a, k)].description, "kind": ids[(a, k)].kind.value,
                 "security_id": ids[(a, k)].security_id, "books": ids[(a, k)].books,
                 "custodian": ids[(a, k)].custodian, "cause": ids[(a, k)].cause or None}
                for a, k in fresh
            ],
        )  # fmt: skip
        entries += [
            Record(SYSTEM, "books.break.open", f"{a}/{k}", {"break": k, "account": a,
                   "books": str(ids[(a, k)].books), "custodian": str(ids[(a, k)].custodian)},
                   ids[(a, k)].description, at=at)
            for a, k in fresh
        ]  # fmt: skip
    gone = [
        key for key, row in stored.items()
        if row.closed is None and key not in ids and row.opened <= as_of
    ]  # fmt: skip
    for a, k in gone:
        row = stored[(a, k)]
        reason = (
            f"cleared: the books and the custodian agree on {as_of}"
            if not any(f.account_id == a and f.kind.value == row.kind
                       and f.security_id == row.security_id for f in found)
            else f"superseded by the snapshot of {as_of}"
        )  # fmt: skip
        connection.execute(
            sa.update(b)
            .where((b.c.account_id == a) & (b.c.break_id == k))
            .values(closed=as_of, resolved_by=SYSTEM, reason=reason)
        )
        entries.append(Record(SYSTEM, "books.break.clear", f"{a}/{k}", {"break": k, "account": a},
                              reason, at=at))  # fmt: skip
    return len(fresh), len(gone), entries


def resolve_break(
    engine: sa.Engine,
    *,
    account_id: str,
    break_id: str,
    actor: str,
    reason: str,
    at: datetime | None = None,
) -> None:
    """Close an open break with why (a person's decision: the custodian is wrong, the
    difference was booked by hand, …), in the audit ledger. The account is no longer
    held for it."""
    at = at or datetime.now(UTC)
    if not reason.strip():
        raise ConflictError("a break is resolved with a reason")
    b = t.breaks
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        row = connection.execute(
            sa.select(b).where((b.c.account_id == account_id) & (b.c.break_id == break_id))
        ).first()
        if row is None:
            raise NotFoundError(f"account {account_id} has no break {break_id}")
        if row.closed is not None:
            raise ConflictError(f"break {break_id} of {account_id} was closed on {row.closed}")
        closed = max(trade_date(at), row.opened)
        connection.execute(
            sa.update(b)
            .where((b.c.account_id == account_id) & (b.c.break_id == break_id))
            .values(closed=closed, resolved_by=actor, reason=reason)
        )
        append_many(
            connection,
            [Record(actor, "books.break.resolve", f"{account_id}/{break_id}",
                    {"break": break_id, "account": account_id}, reason, at=at)],
        )  # fmt: skip
