"""Execution's shell: released proposals become a batch of crosses and block orders,
decided and kept in one transaction with every order in the outbox; what the brokers
send back is booked once; filled blocks are allocated to their accounts and the
proposals they complete are marked executed.

The planning is :mod:`poise.execute` (pure); this module reads its inputs, keeps its
decisions and appends them to the audit ledger. The FIX sessions that send the outbox
and hear the reports are :mod:`poise.workflow.gateway`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poise.audit.ledger import Record, append_many
from poise.domain.approvals import Status
from poise.domain.errors import ConfigError, ConflictError
from poise.domain.money import ZERO
from poise.domain.orders import (
    BlockOrder,
    Cross,
    Fill,
    LotInstruction,
    OrdType,
    Side,
    Skipped,
    StatementLine,
)
from poise.execute.allocation import allocate
from poise.execute.blocks import BlockPolicy, blocks
from poise.execute.book import OrderState, Report, apply_report
from poise.execute.crossing import CrossPolicy, cross
from poise.execute.routes import Route, default_routes, parse_routes, route_names
from poise.execute.safety import Breach, Limits, check_run
from poise.settings import Settings
from poise.store import tables as t
from poise.store.engine import WRITES
from poise.store.repo.approvals import SYSTEM
from poise.store.repo.execution import (
    OrderRow,
    allocated_quantities,
    block_fills,
    keep_allocations,
    keep_batch,
    orders_of,
    references,
    released_trades,
)
from poise.store.rows import among, insert_rows, update_rows
from poise.workflow.approvals import mark_executed

__all__ = [
    "Batch",
    "Booked",
    "Policy",
    "book_report",
    "book_reports",
    "cl_ord_id",
    "close_block",
    "close_blocks",
    "finish_executed",
    "load_routes",
    "plan_batch",
    "policy_of",
]


@dataclass(frozen=True, slots=True)
class Policy:
    """What a batch is planned under, from the settings."""

    crossing: CrossPolicy = field(default_factory=CrossPolicy)
    blocks: BlockPolicy = field(default_factory=BlockPolicy)
    limits: Limits = field(default_factory=Limits)
    routes: tuple[Route, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "crossing": self.crossing.enabled,
            "cross_excluded": sorted(self.crossing.excluded_registrations),
            "order_type": self.blocks.ord_type.value,
            "collar": str(self.blocks.collar),
            "max_orders": self.limits.max_orders,
            "max_notional": str(self.limits.max_notional),
            "price_collar": str(self.limits.collar),
            "routes": {r.name: sorted(r.custodians) or ["*"] for r in self.routes},
        }


def load_routes(settings: Settings) -> tuple[Route, ...]:
    """The firm's routes: its routes file, or every custodian to the simulated broker."""
    if settings.routes_file is None:
        return default_routes(settings.broker_host, settings.broker_port)
    path = Path(settings.routes_file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"routes file {path}: {exc.strerror or exc}") from None
    return parse_routes(text, source=str(path))


def policy_of(settings: Settings) -> Policy:
    try:
        ord_type = OrdType(settings.order_type)
    except ValueError:
        raise ConfigError(
            f"POISE_ORDER_TYPE is {settings.order_type!r}: it is limit or market"
        ) from None
    excluded = frozenset(r for r in settings.cross_excluded.split(";") if r.strip())
    return Policy(
        crossing=CrossPolicy(enabled=settings.cross_trades, excluded_registrations=excluded),
        blocks=BlockPolicy(ord_type=ord_type, collar=settings.order_collar),
        limits=Limits(
            max_orders=settings.max_orders,
            max_notional=settings.max_notional,
            collar=settings.price_collar,
        ),
        routes=load_routes(settings),
    )


@dataclass(frozen=True, slots=True)
class Batch:
    """What one batch decided (``batch_id`` None: nothing was released)."""

    batch_id: str | None
    proposals: tuple[str, ...] = ()
    crosses: tuple[Cross, ...] = ()
    blocks: tuple[BlockOrder, ...] = ()
    cl_ord_ids: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    refused: tuple[Breach, ...] = ()


def _batch_id(at: datetime, proposals: Sequence[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(proposals)).encode()).hexdigest()[:8]
    return f"X{at:%Y%m%d%H%M%S}-{digest}"


def cl_ord_id(batch_id: str, number: int, kind: str = "N") -> str:
    """A block's order id: unique, deterministic, short — the batch, the block's
    number in it, the kind (``N`` new, ``C`` cancel, ``R`` replace) and its count."""
    return f"{batch_id}-{number:05d}-{kind}"


def _records(
    batch_id: str,
    actor: str,
    crosses: Sequence[Cross],
    blocks_made: Sequence[BlockOrder],
    at: datetime,
) -> list[Record]:
    records = [
        Record(
            actor=actor,
            action="execute.cross",
            subject=c.cross_id,
            data={
                "batch": batch_id,
                "security": c.security_id,
                "quantity": str(c.quantity),
                "price": str(c.price),
                "reference": c.source,
                "price_at": c.at.isoformat(),
                "legs": [
                    [leg.account_id, leg.proposal_id, leg.seq, leg.side.value, str(leg.quantity)]
                    for leg in c.legs
                ],
            },
            reason=f"crossed {c.quantity} {c.security_id} at {c.price} ({c.source})",
            at=at,
        )
        for c in crosses
    ]
    records += [
        Record(
            actor=actor,
            action="execute.block",
            subject=b.block_id,
            data={
                "batch": batch_id,
                "route": b.route,
                "security": b.security_id,
                "side": b.side.value,
                "quantity": str(b.quantity),
                "ord_type": b.ord_type.value,
                "limit": None if b.limit is None else str(b.limit),
                "statement": [
                    [line.account_id, line.proposal_id, line.seq, str(line.quantity)]
                    for line in b.statement
                ],
            },
            reason=f"{b.side.value} {b.quantity} {b.security_id} on {b.route}, allocation fixed",
            at=at,
        )
        for b in blocks_made
    ]
    return records


def plan_batch(
    engine: sa.Engine, *, policy: Policy, actor: str, at: datetime | None = None
) -> Batch:
    """Plan every released proposal not yet in a batch: cross, block, check the run's
    limits, and keep it all — the batch, its crosses, its blocks with their statements,
    an order for each block in the outbox, the ledger's entries — in one transaction.

    A batch past a limit is refused whole (:class:`ConflictError` names the breaches)
    and nothing is kept; two planners at once cannot both take a proposal (its key in
    the batch's proposals refuses the second, whose transaction is rolled back)."""
    at = at or datetime.now(UTC)
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        trades = released_trades(connection)
        if not trades:
            return Batch(None)
        proposals = tuple(sorted({trade.proposal_id for trade in trades}))
        batch_id = _batch_id(at, proposals)
        prices = references(
            connection, security_ids={trade.security_id for trade in trades}, as_of=at
        )
        crosses, rest, skipped_cross = cross(trades, prices, policy.crossing, batch_id=batch_id)
        routes = route_names(policy.routes, sorted({trade.custodian for trade in trades}))
        made, skipped_block = blocks(rest, prices, routes, policy.blocks, batch_id=batch_id)
        if skipped_block:
            names = ", ".join(f"{s.proposal_id}#{s.seq} ({s.reason.value})" for s in skipped_block)
            raise ConflictError(f"batch {batch_id} not planned: trades with no order: {names}")
        breaches = check_run(made, policy.limits)
        if breaches:
            raise ConflictError(
                f"batch {batch_id} refused, nothing sent: "
                + "; ".join(b.explanation for b in breaches)
            )
        ids = tuple(cl_ord_id(batch_id, n) for n, _ in enumerate(made, start=1))
        keep_batch(
            connection,
            batch_id=batch_id,
            at=at,
            created_by=actor,
            policy=policy.as_json(),
            proposal_ids=proposals,
            crosses=crosses,
            blocks=made,
            cl_ord_ids=ids,
        )
        append_many(connection, _records(batch_id, actor, crosses, made, at))
    return Batch(batch_id, proposals, crosses, made, ids, skipped_cross)


# ── what comes back ───────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Booked:
    """What one report did: ``new`` False for a duplicate (booked before: nothing
    changed); ``problem`` a break's reason; ``allocated`` the block it completed."""

    new: bool
    cl_ord_id: str
    state: OrderState | None = None
    fill: Decimal = ZERO
    problem: str = ""
    allocated: str | None = None


def _blocks(connection: sa.Connection, block_ids: Collection[str]) -> dict[str, BlockOrder]:
    """The blocks named, with their statements, read in two queries."""
    b, s = t.block_orders, t.statement_lines
    ids = sorted(block_ids)
    lines: dict[str, list[StatementLine]] = {}
    for line in connection.execute(
        sa.select(s).where(among(connection, s.c.block_id, ids)).order_by(s.c.block_id, s.c.number)
    ).all():  # one fetch, not one a row: thousands of rows
        lines.setdefault(line.block_id, []).append(
            StatementLine(
                proposal_id=line.proposal_id,
                seq=line.seq,
                account_id=line.account_id,
                quantity=line.quantity,
                lots=()
                if line.lots == "[]"
                else tuple(
                    LotInstruction(x["lot_id"], Decimal(x["quantity"]))
                    for x in json.loads(line.lots)
                ),
            )
        )
    return {
        row.block_id: BlockOrder(
            block_id=row.block_id,
            route=row.route,
            security_id=row.security_id,
            side=Side(row.side),
            quantity=row.quantity,
            ord_type=OrdType(row.ord_type),
            limit=row.limit_price,
            reference=row.reference,
            statement=tuple(lines.get(row.block_id, ())),
        )
        for row in connection.execute(
            sa.select(b).where(among(connection, b.c.block_id, ids))
        ).all()
    }


def close_blocks(connection: sa.Connection, closing: Mapping[str, str], at: datetime) -> None:
    """Blocks nothing more will fill (block → its last status): each one's fills shared
    out per its statement, once, all in a few statements."""
    if not closing:
        return
    blocks = _blocks(connection, closing)
    fills: dict[str, list[Fill]] = {block_id: [] for block_id in closing}
    for row in block_fills(connection, block_ids=closing):
        fills[row.block_id].append(
            Fill(exec_id=row.exec_id, quantity=row.last_qty, price=row.last_px)
        )
    made = {block_id: allocate(blocks[block_id], fills[block_id]) for block_id in sorted(closing)}
    keep_allocations(connection, allocations=[a for m in made.values() for a in m], at=at)
    update_rows(
        connection,
        t.block_orders,
        [
            {
                "block_id": block_id,
                "status": closing[block_id],
                "filled": sum((f.quantity for f in fills[block_id]), ZERO),
                "allocated_at": at,
            }
            for block_id in sorted(closing)
        ],
        ("block_id",),
    )
    append_many(
        connection,
        [
            Record(
                actor=SYSTEM,
                action="execute.allocate",
                subject=block_id,
                data=[
                    [a.account_id, a.proposal_id, a.seq, str(a.quantity), str(a.price), str(a.net)]
                    for a in shared
                ],
                reason=f"{closing[block_id]}: {sum((a.quantity for a in shared), ZERO)} of"
                f" {blocks[block_id].quantity} {blocks[block_id].security_id} at {shared[0].price}",
                at=at,
            )
            for block_id, shared in made.items()
            if shared
        ],
    )


def close_block(connection: sa.Connection, block_id: str, status: str, at: datetime) -> None:
    """One block nothing more will fill (:func:`close_blocks`)."""
    close_blocks(connection, {block_id: status}, at)


def _execution_row(report: Report, at: datetime) -> dict[str, Any]:
    return {
        "exec_id": report.exec_id,
        "cl_ord_id": report.cl_ord_id,
        "exec_type": report.exec_type,
        "ord_status": report.ord_status,
        "last_qty": report.last_qty,
        "last_px": report.last_px,
        "cum_qty": report.cum_qty,
        "leaves_qty": report.leaves_qty,
        "received_at": at,
        "text": report.text or None,
    }


@dataclass
class _Book:
    """The orders a batch of reports touches, as they stand while it is booked."""

    orders: dict[str, OrderRow]
    states: dict[str, tuple[OrderState, Decimal]]
    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    closing: dict[str, str] = field(default_factory=dict)
    breaks: list[dict[str, Any]] = field(default_factory=list)

    def target(self, report: Report) -> tuple[OrderRow | None, OrderRow | None]:
        """The order a report moves, and (a replace's report) the order it replaced."""
        order = self.orders.get(report.cl_ord_id)
        if order is not None and order.kind == "cancel" and order.orig_cl_ord_id in self.orders:
            return self.orders[order.orig_cl_ord_id], None  # a cancel's report: the order's
        if order is not None and order.kind == "replace" and report.exec_type == "5":
            return order, self.orders.get(order.orig_cl_ord_id or "")
        return order, None

    def move(self, order: OrderRow, state: OrderState, filled: Decimal, **more: Any) -> None:
        self.states[order.cl_ord_id] = (state, filled)
        values = self.changed.setdefault(order.cl_ord_id, {})
        values.update(o_status=state.value, o_filled=filled, **more)

    def book(self, report: Report, raw: str, route: str, at: datetime) -> Booked:
        order, replaced = self.target(report)
        if order is None:
            problem = f"execution report {report.exec_id} names no order poise sent"
            self.breaks.append(_break(route, "unknown_order", problem, raw, at))
            return Booked(True, report.cl_ord_id, problem=problem)
        before, filled = self.states[order.cl_ord_id]
        booking = apply_report(before, filled, order.quantity, report)
        if booking.problem:
            self.breaks.append(_break(route, "bad_report", booking.problem, raw, at))
            return Booked(True, order.cl_ord_id, problem=booking.problem)
        if replaced is not None:  # the replacement works on, with what its original filled
            booking = replace(booking, filled=max(booking.filled, report.cum_qty))
            self.move(replaced, OrderState.REPLACED, self.states[replaced.cl_ord_id][1])
        self.move(
            order,
            booking.state,
            booking.filled,
            o_broker=report.order_id or None,
            o_text=report.text or None,
        )
        ended = booking.state.done and booking.state is not OrderState.REPLACED
        allocated = None
        if ended and before is not booking.state:
            self.closing[order.block_id] = booking.state.value
            allocated = order.block_id
        return Booked(True, order.cl_ord_id, booking.state, booking.fill, allocated=allocated)


def _break(route: str, kind: str, detail: str, raw: str, at: datetime) -> dict[str, Any]:
    return {"route": route, "kind": kind, "detail": detail, "raw": raw, "at": at}


def book_reports(
    engine: sa.Engine, *, route: str, reports: Sequence[tuple[Report, str]], at: datetime
) -> list[Booked]:
    """Book execution reports from ``route`` (each with its raw text), in their order and
    in one transaction: each kept once by its ExecID (a duplicate changes nothing), the
    orders' states and fills moved, a break kept for a report of no order poise sent or
    one that overfills, each block an order leaves done allocated to its accounts, and
    the proposals those blocks complete marked executed (:func:`finish_executed`)."""
    e, o = t.executions, t.orders
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        seen = set(
            connection.execute(
                sa.select(e.c.exec_id).where(
                    (e.c.route == route)
                    & among(connection, e.c.exec_id, sorted({r.exec_id for r, _ in reports}))
                )
            ).scalars()
        )
        fresh: list[tuple[Report, str]] = []
        booked: list[Booked | None] = []
        for report, raw in reports:
            if report.exec_id in seen:
                booked.append(Booked(False, report.cl_ord_id))
                continue
            seen.add(report.exec_id)
            fresh.append((report, raw))
            booked.append(None)
        if not fresh:
            return [b for b in booked if b is not None]
        insert_rows(connection, e, [{"route": route, **_execution_row(r, at)} for r, _ in fresh])
        names = {r.cl_ord_id for r, _ in fresh} | {r.orig_cl_ord_id for r, _ in fresh}
        orders = orders_of(connection, cl_ord_ids=names - {""})
        earlier = {x.orig_cl_ord_id for x in orders.values() if x.orig_cl_ord_id} - set(orders)
        if earlier:
            orders |= orders_of(connection, cl_ord_ids=earlier)
        book = _Book(orders, {k: (OrderState(x.status), x.filled) for k, x in orders.items()})
        made = iter([book.book(report, raw, route, at) for report, raw in fresh])
        result = [b if b is not None else next(made) for b in booked]
        if book.changed:
            update_rows(
                connection,
                o,
                [
                    {
                        "cl_ord_id": k,
                        "status": values["o_status"],
                        "filled": values["o_filled"],
                        "broker_order_id": values.get("o_broker"),
                        "text": values.get("o_text"),
                        "acked_at": at,
                    }
                    for k, values in book.changed.items()
                ],
                ("cl_ord_id",),
                unless_null=("broker_order_id", "text"),
                where_null=("acked_at",),
            )
        if book.breaks:
            connection.execute(sa.insert(t.execution_breaks), book.breaks)
        close_blocks(connection, book.closing, at)
        if book.closing:  # the proposals these blocks complete, in the same commit
            _finish(connection, at=at, block_ids=book.closing)
    return result


def book_report(engine: sa.Engine, *, route: str, report: Report, raw: str, at: datetime) -> Booked:
    """Book one execution report from ``route`` (:func:`book_reports`)."""
    return book_reports(engine, route=route, reports=[(report, raw)], at=at)[0]


def finish_executed(
    engine: sa.Engine,
    *,
    at: datetime | None = None,
    block_ids: Collection[str] | None = None,
) -> list[str]:
    """Mark executed every released proposal whose trades are all crossed or allocated in
    full (a household's when all its accounts' are); the ones marked. Booking does it
    for the blocks it allocates (:func:`book_reports`); run again at any time, it
    finishes what a crash between allocating and marking left (``block_ids``: only the
    proposals of these blocks, and their households')."""
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        return _finish(connection, at=at or datetime.now(UTC), block_ids=block_ids)


def _finish(
    connection: sa.Connection, *, at: datetime, block_ids: Collection[str] | None
) -> list[str]:
    """:func:`finish_executed` in the caller's transaction."""
    p, bp, sl = t.proposals, t.batch_proposals, t.statement_lines
    query = (
        sa.select(p.c.proposal_id, p.c.household_proposal_id)
        .where(p.c.status == Status.RELEASED.value)
        .where(sa.exists().where(bp.c.proposal_id == p.c.proposal_id))
    )
    if block_ids is None:
        rows = list(connection.execute(query).all())
    else:  # by key: the blocks' proposals, then their households' (no scan of either)
        mine = sorted(
            set(
                connection.execute(
                    sa.select(sl.c.proposal_id).where(
                        among(connection, sl.c.block_id, sorted(block_ids))
                    )
                ).scalars()
            )
        )
        rows = list(connection.execute(query.where(among(connection, p.c.proposal_id, mine))).all())
        homes = sorted(
            set(
                connection.execute(
                    sa.select(p.c.household_proposal_id).where(
                        among(connection, p.c.proposal_id, mine)
                        & p.c.household_proposal_id.is_not(None)
                    )
                ).scalars()
            )
        )
        if homes:
            seen = {r.proposal_id for r in rows}
            rows += [
                r
                for r in connection.execute(
                    query.where(among(connection, p.c.household_proposal_id, homes))
                ).all()
                if r.proposal_id not in seen
            ]
    ids = [r.proposal_id for r in rows]
    got = allocated_quantities(connection, proposal_ids=ids)
    wanted: dict[str, list[tuple[int, Decimal]]] = {}
    for row in connection.execute(
        sa.select(
            t.proposal_trades.c.proposal_id,
            t.proposal_trades.c.seq,
            t.proposal_trades.c.quantity,
        ).where(among(connection, t.proposal_trades.c.proposal_id, ids))
    ).all():
        wanted.setdefault(row.proposal_id, []).append((row.seq, row.quantity))
    households: dict[str, list[str]] = {}
    trading = sa.exists().where(t.proposal_trades.c.proposal_id == p.c.proposal_id)
    for part in connection.execute(
        sa.select(p.c.household_proposal_id, p.c.proposal_id, trading.label("trades")).where(
            among(
                connection,
                p.c.household_proposal_id,
                sorted({r.household_proposal_id for r in rows if r.household_proposal_id}),
            )
        )
    ).all():
        parts = households.setdefault(part.household_proposal_id, [])
        if part.trades:  # an account the household's proposal leaves as it is: done
            parts.append(part.proposal_id)
    done = {
        pid
        for pid in ids
        if all(got.get((pid, seq), ZERO) == quantity for seq, quantity in wanted.get(pid, []))
    }
    units = sorted(
        {r.proposal_id for r in rows if r.household_proposal_id is None and r.proposal_id in done}
        | {h for h, parts in households.items() if all(part in done for part in parts)}
    )
    if not units:
        return []
    return mark_executed(connection, proposal_ids=units, at=at)
