"""Execution's rows: released trades read, a batch's decisions kept in one go, the
outbox, execution reports booked once, allocations, breaks — and the FIX sessions'
sequence numbers and sent messages (:class:`SessionRows`, the database's session
store, so that storing an order's message and marking it sent are one commit)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa

from poise.domain.approvals import Status
from poise.domain.money import ZERO
from poise.domain.orders import (
    Allocation,
    BlockOrder,
    Cross,
    LotInstruction,
    Reference,
    ReleasedTrade,
    Side,
)
from poise.store import tables as t
from poise.store.repo.prices import latest_prices
from poise.store.rows import among, insert_rows, update_rows

__all__ = [
    "Marked",
    "OrderRow",
    "SessionRows",
    "allocated_quantities",
    "block_fills",
    "count_open",
    "keep_allocations",
    "keep_batch",
    "keep_break",
    "mark_sent",
    "open_orders",
    "orders_of",
    "references",
    "released_trades",
    "unsent",
]


def _lots_json(lots: Iterable[LotInstruction]) -> str:
    return json.dumps([{"lot_id": lot.lot_id, "quantity": str(lot.quantity)} for lot in lots])


def released_trades(connection: sa.Connection) -> list[ReleasedTrade]:
    """Every trade of every released account proposal not yet planned into a batch, in
    (proposal, seq) order."""
    p, pt, a, s, bp = (
        t.proposals,
        t.proposal_trades,
        t.accounts,
        t.securities,
        t.batch_proposals,
    )
    query = (
        sa.select(
            pt.c.proposal_id,
            pt.c.seq,
            pt.c.security_id,
            pt.c.side,
            pt.c.quantity,
            pt.c.price,
            pt.c.lots,
            p.c.account_id,
            a.c.household_id,
            a.c.custodian,
            a.c.registration,
            a.c.cross_consent,
            s.c.identity_group,
            s.c.trade_unit,
        )
        .select_from(
            pt.join(p, p.c.proposal_id == pt.c.proposal_id)
            .join(a, a.c.account_id == p.c.account_id)
            .join(s, s.c.security_id == pt.c.security_id)
        )
        .where(p.c.status == Status.RELEASED.value)
        .where(~sa.exists().where(bp.c.proposal_id == p.c.proposal_id))
        .order_by(pt.c.proposal_id, pt.c.seq)
    )
    trades = []
    for row in connection.execute(query):
        sold = json.loads(row.lots)
        trades.append(
            ReleasedTrade(
                proposal_id=row.proposal_id,
                seq=row.seq,
                account_id=row.account_id,
                household_id=row.household_id,
                custodian=row.custodian or "",
                registration=row.registration,
                cross_consent=bool(row.cross_consent),
                security_id=row.security_id,
                identity=row.identity_group or row.security_id,
                side=Side(row.side),
                quantity=row.quantity,
                price=row.price,
                loss=any(Decimal(lot["proceeds"]) < Decimal(lot["basis"]) for lot in sold),
                lots=tuple(LotInstruction(lot["lot_id"], Decimal(lot["quantity"])) for lot in sold),
                whole=row.trade_unit != "fraction",
            )
        )
    return trades


def references(
    connection: sa.Connection, *, security_ids: Collection[str], as_of: datetime | None = None
) -> dict[str, Reference]:
    """The independent reference price of each security: its latest price in the store
    (at or before ``as_of``), with where it came from and when."""
    found = latest_prices(connection, as_of=as_of, security_ids=security_ids)
    return {
        security: Reference(
            security_id=security,
            price=price,
            source=f"last price in the store, {at:%Y-%m-%d %H:%M} UTC",
            at=at,
        )
        for security, (price, at) in found.items()
    }


@dataclass(frozen=True, slots=True)
class OrderRow:
    """An order as the gateway sends it: a block's new order, or a cancel of one."""

    cl_ord_id: str
    block_id: str
    route: str
    kind: str  # new, cancel, replace, status
    orig_cl_ord_id: str | None
    security_id: str
    side: Side
    quantity: Decimal
    ord_type: str
    limit_price: Decimal | None
    status: str
    filled: Decimal


def keep_batch(
    connection: sa.Connection,
    *,
    batch_id: str,
    at: datetime,
    created_by: str,
    policy: dict[str, Any],
    proposal_ids: Collection[str],
    crosses: Sequence[Cross],
    blocks: Sequence[BlockOrder],
    cl_ord_ids: Sequence[str],
) -> None:
    """A batch's decisions, in the caller's transaction: its proposals (a proposal is in
    one batch only: the key refuses a second), its crosses, its blocks with their
    statements, a new order for each block (``cl_ord_ids``, one a block) and its
    outbox row."""
    connection.execute(
        sa.insert(t.execution_batches).values(
            batch_id=batch_id,
            created_at=at,
            created_by=created_by,
            policy=json.dumps(policy, sort_keys=True),
        )
    )
    connection.execute(
        sa.insert(t.batch_proposals),
        [{"proposal_id": p, "batch_id": batch_id} for p in sorted(proposal_ids)],
    )
    if crosses:
        connection.execute(
            sa.insert(t.crosses),
            [
                {
                    "cross_id": c.cross_id,
                    "batch_id": batch_id,
                    "security_id": c.security_id,
                    "quantity": c.quantity,
                    "price": c.price,
                    "source": c.source,
                    "price_at": c.at,
                }
                for c in crosses
            ],
        )
        connection.execute(
            sa.insert(t.cross_legs),
            [
                {
                    "cross_id": c.cross_id,
                    "number": n,
                    "proposal_id": leg.proposal_id,
                    "seq": leg.seq,
                    "account_id": leg.account_id,
                    "side": leg.side.value,
                    "quantity": leg.quantity,
                    "lots": _lots_json(leg.lots),
                }
                for c in crosses
                for n, leg in enumerate(c.legs, start=1)
            ],
        )
    if not blocks:
        return
    connection.execute(
        sa.insert(t.block_orders),
        [
            {
                "block_id": b.block_id,
                "batch_id": batch_id,
                "route": b.route,
                "security_id": b.security_id,
                "side": b.side.value,
                "quantity": b.quantity,
                "ord_type": b.ord_type.value,
                "limit_price": b.limit,
                "reference": b.reference,
                "status": "open",
                "filled": ZERO,
            }
            for b in blocks
        ],
    )
    connection.execute(
        sa.insert(t.statement_lines),
        [
            {
                "block_id": b.block_id,
                "number": n,
                "proposal_id": line.proposal_id,
                "seq": line.seq,
                "account_id": line.account_id,
                "quantity": line.quantity,
                "lots": _lots_json(line.lots),
            }
            for b in blocks
            for n, line in enumerate(b.statement, start=1)
        ],
    )
    connection.execute(
        sa.insert(t.orders),
        [
            {
                "cl_ord_id": cl_ord_id,
                "block_id": b.block_id,
                "route": b.route,
                "kind": "new",
                "quantity": b.quantity,
                "limit_price": b.limit,
                "status": "pending",
                "filled": ZERO,
                "created_at": at,
            }
            for b, cl_ord_id in zip(blocks, cl_ord_ids, strict=True)
        ],
    )
    connection.execute(
        sa.insert(t.outbox),
        [{"cl_ord_id": c, "route": b.route} for b, c in zip(blocks, cl_ord_ids, strict=True)],
    )


def _order_query() -> sa.Select[Any]:
    o, b = t.orders, t.block_orders
    return sa.select(
        o.c.cl_ord_id,
        o.c.block_id,
        o.c.route,
        o.c.kind,
        o.c.orig_cl_ord_id,
        b.c.security_id,
        b.c.side,
        o.c.quantity,
        b.c.ord_type,
        o.c.limit_price,
        o.c.status,
        o.c.filled,
    ).select_from(o.join(b, b.c.block_id == o.c.block_id))


def _order(row: sa.Row[Any]) -> OrderRow:
    m = dict(row._mapping)
    m["side"] = Side(m["side"])
    return OrderRow(**m)


def unsent(connection: sa.Connection, *, route: str) -> list[OrderRow]:
    """The route's orders in the outbox not yet sent, in the order they were decided."""
    x = t.outbox
    query = (
        _order_query()
        .join(x, x.c.cl_ord_id == t.orders.c.cl_ord_id)
        .where((x.c.route == route) & x.c.sent_seq.is_(None))
        .order_by(x.c.outbox_id)
    )
    return [_order(row) for row in connection.execute(query)]


def orders_of(connection: sa.Connection, *, cl_ord_ids: Collection[str]) -> dict[str, OrderRow]:
    query = _order_query().where(among(connection, t.orders.c.cl_ord_id, sorted(cl_ord_ids)))
    return {row.cl_ord_id: _order(row) for row in connection.execute(query).all()}


OPEN = ("pending", "sent", "new", "partial", "pending_cancel")


def open_orders(connection: sa.Connection, *, route: str | None = None) -> list[OrderRow]:
    """Orders (new, or a replacement) still working or not yet sent, oldest first."""
    o = t.orders
    query = _order_query().where(o.c.status.in_(OPEN) & o.c.kind.in_(("new", "replace")))
    if route is not None:
        query = query.where(o.c.route == route)
    return [
        _order(row) for row in connection.execute(query.order_by(o.c.created_at, o.c.cl_ord_id))
    ]


def count_open(connection: sa.Connection, *, route: str) -> int:
    """How many of the route's orders :func:`open_orders` would list."""
    o = t.orders
    query = sa.select(sa.func.count()).where(
        o.c.status.in_(OPEN) & o.c.kind.in_(("new", "replace")) & (o.c.route == route)
    )
    return int(connection.execute(query).scalar_one())


def mark_sent(connection: sa.Connection, *, cl_ord_id: str, seq: int, at: datetime) -> None:
    """The order went out under MsgSeqNum ``seq`` (in the transaction that stored the
    message, so that a restart never sends it under a new number)."""
    connection.execute(
        sa.update(t.outbox)
        .where(t.outbox.c.cl_ord_id == cl_ord_id)
        .values(sent_seq=seq, sent_at=at)
    )
    connection.execute(
        sa.update(t.orders)
        .where((t.orders.c.cl_ord_id == cl_ord_id) & (t.orders.c.status == "pending"))
        .values(status="sent", sent_at=at)
    )


def keep_break(
    connection: sa.Connection, *, route: str, kind: str, detail: str, raw: str, at: datetime
) -> None:
    connection.execute(
        sa.insert(t.execution_breaks).values(route=route, kind=kind, detail=detail, raw=raw, at=at)
    )


def block_fills(connection: sa.Connection, *, block_ids: Collection[str]) -> list[sa.Row[Any]]:
    """The fills of these blocks' orders (block, ExecID, quantity, price), in the order
    they came."""
    e, o = t.executions, t.orders
    rows = connection.execute(
        sa.select(o.c.block_id, e.c.exec_id, e.c.last_qty, e.c.last_px)
        .select_from(e.join(o, o.c.cl_ord_id == e.c.cl_ord_id))
        .where(among(connection, o.c.block_id, sorted(block_ids)) & (e.c.last_qty > 0))
        .order_by(e.c.received_at, e.c.exec_id)
    ).all()  # one fetch, not one a row
    return cast(list[sa.Row[Any]], list(rows))


def keep_allocations(
    connection: sa.Connection, *, allocations: Sequence[Allocation], at: datetime
) -> None:
    if not allocations:
        return
    insert_rows(
        connection,
        t.allocations,
        [
            {
                "block_id": a.block_id,
                "proposal_id": a.proposal_id,
                "seq": a.seq,
                "account_id": a.account_id,
                "side": a.side.value,
                "quantity": a.quantity,
                "price": a.price,
                "gross": a.gross,
                "commission": a.commission,
                "net": a.net,
                "lots": _lots_json(a.lots),
                "at": at,
            }
            for a in allocations
        ],
    )


def allocated_quantities(
    connection: sa.Connection, *, proposal_ids: Collection[str]
) -> dict[tuple[str, int], Decimal]:
    """What each trade of these proposals has been given, crossed and allocated."""
    got: dict[tuple[str, int], Decimal] = {}
    ids = sorted(proposal_ids)
    for table in (t.cross_legs, t.allocations):
        for row in connection.execute(
            sa.select(table.c.proposal_id, table.c.seq, table.c.quantity).where(
                among(connection, table.c.proposal_id, ids)
            )
        ).all():
            key = (row.proposal_id, row.seq)
            got[key] = got.get(key, ZERO) + row.quantity
    return got


@dataclass(frozen=True, slots=True)
class Marked:
    """An order marked sent in the commit that stores its message (the ``extra`` the
    gateway hands the session); many are marked in two statements."""

    cl_ord_id: str
    at: datetime

    def __call__(self, connection: sa.Connection, seq: int) -> None:
        mark_sent(connection, cl_ord_id=self.cl_ord_id, seq=seq, at=self.at)

    @staticmethod
    def apply(connection: sa.Connection, marks: Sequence[tuple[Marked, int]]) -> None:
        update_rows(
            connection,
            t.outbox,
            [{"cl_ord_id": m.cl_ord_id, "sent_seq": seq, "sent_at": m.at} for m, seq in marks],
            ("cl_ord_id",),
        )
        update_rows(
            connection,
            t.orders,
            [{"cl_ord_id": m.cl_ord_id, "status": "sent", "sent_at": m.at} for m, _ in marks],
            ("cl_ord_id",),
            only={"status": "pending"},
        )


class SessionRows:
    """A FIX session's store in the database (the session layer's ``SessionStore``):
    its next sequence numbers and what it sent. ``extra`` handed to
    :meth:`save_outbound` is a function of the connection, run in the same commit —
    the gateway marks an order sent there."""

    def __init__(self, engine: sa.Engine, session_key: str) -> None:
        self.engine = engine
        self.key = session_key

    def load(self) -> tuple[int, int]:
        s = t.fix_sessions
        with self.engine.begin() as connection:
            row = connection.execute(sa.select(s).where(s.c.session_key == self.key)).first()
            if row is None:
                connection.execute(
                    sa.insert(s).values(session_key=self.key, next_sender=1, next_target=1)
                )
                return 1, 1
            return int(row.next_sender), int(row.next_target)

    def save_outbound(self, seq: int, raw: bytes, extra: object = None) -> None:
        s = t.fix_sessions
        with self.engine.begin() as connection:
            connection.execute(
                sa.insert(t.fix_messages).values(session_key=self.key, seq=seq, raw=raw)
            )
            connection.execute(
                sa.update(s).where(s.c.session_key == self.key).values(next_sender=seq + 1)
            )
            if callable(extra):
                also: Callable[[sa.Connection, int], None] = extra
                also(connection, seq)

    def save_outbound_many(self, items: Sequence[tuple[int, bytes, object]]) -> None:
        """Several messages kept in one commit, each ``extra`` run in it too."""
        if not items:
            return
        s = t.fix_sessions
        with self.engine.begin() as connection:
            insert_rows(
                connection,
                t.fix_messages,
                [{"session_key": self.key, "seq": seq, "raw": raw} for seq, raw, _ in items],
            )
            connection.execute(
                sa.update(s)
                .where(s.c.session_key == self.key)
                .values(next_sender=max(seq for seq, _, _ in items) + 1)
            )
            marks = [(extra, seq) for seq, _, extra in items if isinstance(extra, Marked)]
            if marks:
                Marked.apply(connection, marks)
            for seq, _, extra in items:
                if callable(extra) and not isinstance(extra, Marked):
                    extra(connection, seq)

    def set_next_target(self, seq: int) -> None:
        s = t.fix_sessions
        with self.engine.begin() as connection:
            connection.execute(
                sa.update(s).where(s.c.session_key == self.key).values(next_target=seq)
            )

    def outbound(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        m = t.fix_messages
        query = sa.select(m.c.seq, m.c.raw).where(
            (m.c.session_key == self.key) & (m.c.seq >= begin)
        )
        if end:
            query = query.where(m.c.seq <= end)
        with self.engine.connect() as connection:
            return [(int(r.seq), bytes(r.raw)) for r in connection.execute(query.order_by(m.c.seq))]

    def reset(self) -> None:
        s, m = t.fix_sessions, t.fix_messages
        with self.engine.begin() as connection:
            connection.execute(sa.delete(m).where(m.c.session_key == self.key))
            connection.execute(
                sa.update(s).where(s.c.session_key == self.key).values(next_sender=1, next_target=1)
            )
