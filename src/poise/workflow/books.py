"""Fills into the books (``poise reconcile``): every allocation and cross leg not yet
booked becomes a transaction, lots, realised gains and cash, by
:func:`poise.reconcile.fills.book`; the households it touches are washed again
(:mod:`poise.workflow.washsales`); and each account's booking lands in the audit
ledger — all in one transaction, so that a crash books nothing and a re-run books
everything once."""

from __future__ import annotations

import marshal
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa

from poise.audit.canonical import data_hash
from poise.audit.ledger import Record, append_many
from poise.domain import errors
from poise.domain.errors import PoiseError, StoreError
from poise.domain.lots import TaxLot
from poise.domain.money import ZERO
from poise.domain.relief import Method
from poise.domain.securities import Security
from poise.domain.transactions import Transaction, TxnKind
from poise.domain.washhistory import lot_changes
from poise.reconcile.fills import Execution, Realised, Refused, book
from poise.store import repo
from poise.store import tables as t
from poise.store.engine import WRITES, make_engine
from poise.store.repo.fills import (
    Rows,
    Source,
    booked_rows,
    keep_booked,
    pending_fills,
    unbooked,
)
from poise.workflow import collector
from poise.workflow.fanout import (
    Failed,
    Failure,
    Fanout,
    Inline,
    Outcome,
    choose,
    cpu_count,
    fan_out,
)
from poise.workflow.washsales import HouseholdBooks, households_books, washed

__all__ = ["BookedFills", "book_fills", "relief_methods"]

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class BookedFills:
    """What one booking did."""

    executions: int = 0
    accounts: int = 0
    transactions: int = 0
    realised: int = 0
    gain: Decimal = ZERO  # realised, before wash sales
    cash: Decimal = ZERO  # moved, all accounts together
    lots_written: int = 0
    washed: int = 0  # lot rows the households' wash sales changed
    refused: tuple[Refused, ...] = field(default=())
    parts: int = 0  # the households were booked in this many parts,
    processes: int = 1  # by this many processes: the caller's own and a pool's workers


def relief_methods(
    connection: sa.Connection, *, account_ids: list[str], default: Method
) -> dict[str, Method]:
    """Each account's relief method: its own, or ``default``."""
    a = t.accounts
    found = dict(
        connection.execute(
            sa.select(a.c.account_id, a.c.relief_method).where(a.c.account_id.in_(account_ids))
        ).all()
    )
    return {k: Method(found[k]) if found.get(k) else default for k in account_ids}


FAN_OUT_FROM = 20_000  # fills: fewer are booked in the caller's process (a pool's start
# costs about half a second; 20,000 fills take about two in one process)
PARTS_A_WORKER = 6  # parts a worker books, about: the caller keeps each as it comes


def book_fills(
    engine: sa.Engine,
    *,
    default_method: Method = Method.FIFO,
    account_ids: list[str] | None = None,
    at: datetime | None = None,
    workers: int | None = None,
    fan_out_from: int = FAN_OUT_FROM,
) -> BookedFills:
    """Book every allocation and cross leg not yet in the books (of ``account_ids``;
    None: all). An execution the books cannot take is left unbooked and returned with
    its reason (``refused``); a later run tries it again.

    Each household the executions touch is read once, booked and washed in memory, and
    written once, all in one transaction. At ``fan_out_from`` fills or more, the
    households are booked in parts on a pool of ``workers`` processes (None: one per
    CPU; 1: none), each part read by its worker from the committed store while this
    transaction holds the lots against other writers, and handed back as rows that
    this process keeps as each part comes."""
    with collector.paused():  # what booking makes is freed before the collector runs
        return _book_fills(
            engine,
            default_method=default_method,
            account_ids=account_ids,
            at=at or datetime.now(UTC),
            workers=workers,
            fan_out_from=fan_out_from,
        )


def _book_fills(
    engine: sa.Engine,
    *,
    default_method: Method,
    account_ids: list[str] | None,
    at: datetime,
    workers: int | None,
    fan_out_from: int,
) -> BookedFills:
    with engine.execution_options(**{WRITES: True}).begin() as connection:
        repo.lock_lots(connection)
        pending = pending_fills(connection, account_ids=account_ids)
        homes = repo.homes(connection, account_ids=pending)
        shared = _Shared(
            url=engine.url.render_as_string(hide_password=False),
            default_method=default_method,
            at=at,
            securities=repo.securities(connection),
        )
        fills = sum(pending.values())
        fanout: Fanout = Inline()  # a booking of a few: one part, here
        parts = _parts(pending, homes, workers=1, least=fills)
        if fills >= max(fan_out_from, 1) and _shareable(connection):
            parts = _parts(pending, homes, workers=workers or cpu_count(), least=fan_out_from // 10)
            fanout = choose(tasks=len(parts), workers=workers)
        ledger = _Ledger(connection, at)
        if isinstance(fanout, Inline):
            for index, (households, accounts) in enumerate(parts):
                ledger.kept(
                    index,
                    _kept(connection, _book_part(connection, shared, households, accounts), at),
                )
        else:
            _fanned(connection, fanout, parts, shared, ledger)
        kept = ledger.done()
    return BookedFills(
        executions=sum(p.executions for p in kept),
        accounts=sum(len(p.entries) for p in kept),
        transactions=sum(p.transactions for p in kept),
        realised=sum(p.realised for p in kept),
        gain=sum((Decimal(p.gain) for p in kept), ZERO),
        cash=sum((Decimal(v) for p in kept for v in p.cash.values()), ZERO),
        lots_written=sum(p.lots_written for p in kept),
        washed=sum(p.washed for p in kept),
        refused=tuple(Refused(*r) for p in kept for r in p.refused),
        parts=len(kept),
        processes=1 if isinstance(fanout, Inline) else 1 + (fanout.workers or 1),
    )


def _fanned(
    connection: sa.Connection,
    fanout: Fanout,
    parts: list[Part],
    shared: _Shared,
    ledger: _Ledger,
) -> None:
    """Every part but the last booked on ``fanout``'s workers, each kept as it comes;
    the last booked here while the workers start (the first pool of a process starts a
    server that imports poise: half a second in which this process would wait)."""
    outcomes: queue.Queue[Outcome[Part, bytes] | None] = queue.Queue()
    stop = threading.Event()

    def drive() -> None:  # the pool's outcomes, handed over as they come
        try:
            with fan_out(_book_part_apart, parts[:-1], shared=shared, fanout=fanout) as run:
                for outcome in run:
                    outcomes.put(outcome)
                    if stop.is_set():
                        break
        except Exception as exc:  # the pool itself failed: the booking fails with it
            outcomes.put(Failed(-1, ((), ()), Failure.of(exc, with_traceback=False)))
        finally:
            outcomes.put(None)

    thread = threading.Thread(target=drive, name="poise-booking-parts", daemon=True)
    thread.start()
    try:
        last = len(parts) - 1
        ledger.kept(
            last, _kept(connection, _book_part(connection, shared, *parts[last]), shared.at)
        )
        while (outcome := outcomes.get()) is not None:
            if isinstance(outcome, Failed):
                raise _again(outcome.failure)
            part = _Part.unpacked(outcome.value)
            ledger.kept(outcome.index, _kept(connection, part, shared.at))
    finally:
        stop.set()
        thread.join()


def _again(failure: Failure) -> PoiseError:
    """A part's failure in its worker as the error booking it here would have raised
    (poise's own kinds of error by name; anything else as the store failing)."""
    kind = getattr(errors, failure.kind, None)
    if isinstance(kind, type) and issubclass(kind, PoiseError):
        return kind(failure.message)
    return StoreError(f"booking fills: {failure.reason}")


class _Ledger:
    """Each account's ledger entry, appended in the order of the parts whatever order
    they come in: a part's entries as soon as the parts before it are kept."""

    def __init__(self, connection: sa.Connection, at: datetime) -> None:
        self.connection = connection
        self.at = at
        self.parts: dict[int, _Part] = {}
        self.appended = 0  # the parts whose entries are in the ledger

    def kept(self, index: int, part: _Part) -> None:
        self.parts[index] = part
        while self.appended in self.parts:
            entries = self.parts[self.appended].entries
            append_many(
                self.connection,
                [
                    Record(actor=SYSTEM, action="books.fill", subject=subject, data=None,
                           reason=reason, at=self.at)
                    for subject, reason, _ in entries
                ],
                hashes=[hashed for _, _, hashed in entries],
            )  # fmt: skip
            self.appended += 1

    def done(self) -> list[_Part]:
        """Every part, in order (all kept, all in the ledger)."""
        if self.appended != len(self.parts):
            raise StoreError(f"booking fills: {len(self.parts) - self.appended} part(s) missing")
        return [self.parts[index] for index in range(self.appended)]


@dataclass(frozen=True, slots=True)
class _Shared:
    """What every part of a booking needs: the store, the default relief method, the
    time of the booking, and the firm's securities (read once)."""

    url: str
    default_method: Method
    at: datetime
    securities: dict[str, Security]


Part = tuple[tuple[str, ...], tuple[str, ...]]  # households, and their accounts to book


def _parts(
    pending: dict[str, int], homes: dict[str, str], *, workers: int, least: int
) -> list[Part]:
    """The households with fills to book, in order, cut into parts of about equal fills,
    about ``PARTS_A_WORKER`` for each of ``workers``, each of ``least`` fills or more."""
    fills: dict[str, int] = {}
    accounts: dict[str, list[str]] = {}
    for account_id in sorted(homes):
        home = homes[account_id]
        fills[home] = fills.get(home, 0) + pending[account_id]
        accounts.setdefault(home, []).append(account_id)
    size = max(least, sum(fills.values()) // (workers * PARTS_A_WORKER) + 1)
    parts: list[Part] = []
    households: list[str] = []
    count = 0
    for home in sorted(fills):
        households.append(home)
        count += fills[home]
        if count >= size:
            parts.append(_part(households, accounts))
            households, count = [], 0
    if households:
        parts.append(_part(households, accounts))
    return parts


def _part(households: list[str], accounts: dict[str, list[str]]) -> Part:
    return tuple(households), tuple(a for h in households for a in accounts[h])


def _shareable(connection: sa.Connection) -> bool:
    """Whether other processes can read the store while this transaction writes: not
    an in-memory SQLite database, nor one whose journal is not the write-ahead log (a
    writer there shuts readers out once its changes outgrow its cache)."""
    if connection.dialect.name != "sqlite":
        return True
    mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    database = connection.engine.url.database or ""
    return str(mode).lower() == "wal" and database not in ("", ":memory:")


@dataclass(frozen=True, slots=True)
class _Part:
    """One part's booking as its rows, ready for the booking's transaction: plain
    values only, so that a worker hands it back as ``marshal`` bytes."""

    rows: tuple[Rows, ...]
    gone: list[tuple[str, str]]
    cash: dict[str, str]
    allocations: list[tuple[str, str, int]]
    legs: list[tuple[str, int]]
    entries: list[tuple[str, str, str]]  # each account's ledger entry: subject, reason, data hash
    refused: list[tuple[str, str, str]]
    executions: int
    transactions: int
    realised: int
    gain: str
    lots_written: int
    washed: int

    def packed(self) -> bytes:
        rows = tuple((r.table, r.names, r.values) for r in self.rows)
        return marshal.dumps((rows, *(getattr(self, f) for f in _Part.__slots__[1:])))

    @classmethod
    def unpacked(cls, data: bytes) -> _Part:
        rows, *rest = marshal.loads(data)
        return cls(tuple(Rows(*r) for r in rows), *rest)


_engines: dict[str, sa.Engine] = {}  # a worker's engine, made at its first part


def _book_part_apart(shared: _Shared, part: Part) -> bytes:
    """A part booked in a pool's worker, read from the committed store."""
    engine = _engines.get(shared.url)
    if engine is None:
        engine = _engines[shared.url] = make_engine(shared.url)
    with collector.paused(), engine.connect() as connection, connection.begin():
        return _book_part(connection, shared, *part).packed()


def _book_part(
    connection: sa.Connection, shared: _Shared, households: Sequence[str], accounts: Sequence[str]
) -> _Part:
    """Book the executions of ``accounts`` into ``households``' books, in memory, and
    wash the households again: the rows to keep."""
    mine: dict[str, list[tuple[Execution, Source]]] = {}
    for execution, source in unbooked(connection, account_ids=accounts):
        mine.setdefault(execution.account_id, []).append((execution, source))
    methods = relief_methods(connection, account_ids=sorted(mine), default=shared.default_method)
    books = households_books(connection, households)
    done = _Booking()
    keys: set[tuple[str, str]] = set()
    for household in books.values():
        stored = list(household.lots)
        keys |= {(lot.account_id, lot.lot_id) for lot in stored}
        for account in household.accounts:
            if account.account_id in mine:
                done.account(household, mine[account.account_id], methods[account.account_id])
        if _trades_both_ways(household.transactions):
            booked = household.lots
            household.lots = list(washed(household, shared.securities).lots)
            moved = lot_changes(booked, household.lots)
            done.washed += len(moved.write) + len(moved.remove)
        changes = lot_changes(stored, household.lots)
        done.write += changes.write
        done.remove += changes.remove
    gone = {(lot.account_id, lot.lot_id) for lot in done.write} & keys | set(done.remove)
    return _Part(
        rows=booked_rows(
            connection.dialect.name,
            transactions=done.transactions,
            realised=done.realised,
            closed=done.closed,
            lots=done.write,
        ),
        gone=sorted(gone),
        cash={k: str(v) for k, v in done.cash.items()},
        allocations=[
            (b, p, int(n)) for b, p, n in (s.key for s in done.sources if s.table == "allocations")
        ],
        legs=[(c, int(n)) for c, n in (s.key for s in done.sources if s.table == "cross_legs")],
        entries=done.entries,
        refused=[(r.txn_id, r.account_id, r.reason) for r in done.refused],
        executions=sum(len(v) for v in mine.values()) - len(done.refused),
        transactions=len(done.transactions),
        realised=len(done.realised),
        gain=str(sum((r.gain for r in done.realised), ZERO)),
        lots_written=len(done.write) + len(set(done.remove)),
        washed=done.washed,
    )


def _kept(connection: sa.Connection, part: _Part, at: datetime) -> _Part:
    """Keep ``part``'s rows in the booking's transaction; the part without them (its
    ledger entries and figures stay for the end)."""
    keep_booked(
        connection,
        rows=part.rows,
        gone=part.gone,
        cash={k: Decimal(v) for k, v in part.cash.items()},
        allocations=part.allocations,
        legs=part.legs,
        at=at,
    )
    return replace(part, rows=(), gone=[], allocations=[], legs=[])


def _trades_both_ways(transactions: list[Transaction]) -> bool:
    """Only a household that has bought and sold can hold a wash."""
    kinds = {x.kind for x in transactions}
    return TxnKind.BUY in kinds and TxnKind.SELL in kinds


@dataclass
class _Booking:
    """What one booking makes, account by account."""

    transactions: list[Transaction] = field(default_factory=list)
    realised: list[Realised] = field(default_factory=list)
    closed: list[tuple[TaxLot, date, str]] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    cash: dict[str, Decimal] = field(default_factory=dict)
    entries: list[tuple[str, str, str]] = field(default_factory=list)  # subject, reason, hash
    write: list[TaxLot] = field(default_factory=list)
    remove: list[tuple[str, str]] = field(default_factory=list)
    washed: int = 0

    def account(
        self, household: HouseholdBooks, executions: list[tuple[Execution, Source]], method: Method
    ) -> None:
        """Book one account's executions into its household's books, in memory."""
        account_id = executions[0][0].account_id
        held = [lot for lot in household.lots if lot.account_id == account_id]
        booked = book(account_id, held, [e for e, _ in executions], method=method)
        household.lots = [lot for lot in household.lots if lot.account_id != account_id]
        household.lots += booked.lots
        household.transactions = sorted(
            [*household.transactions, *booked.transactions],
            key=lambda x: (x.trade_date, x.account_id, x.txn_id),
        )
        household.closed += [lot for lot, _, _ in booked.closed]
        no = {r.txn_id for r in booked.refused}
        self.sources += [s for e, s in executions if e.txn_id not in no]
        self.transactions += booked.transactions
        self.realised += booked.realised
        self.closed += booked.closed
        self.refused += booked.refused
        self.cash[account_id] = booked.cash
        if booked.transactions:
            self.entries.append(
                (
                    account_id,
                    f"{len(booked.transactions)} execution(s) booked, cash {booked.cash:+}",
                    data_hash(
                        {
                            "transactions": [x.txn_id for x in booked.transactions],
                            "cash": str(booked.cash),
                            "realised": [
                                [r.txn_id, r.lot_id, str(r.quantity), str(r.gain)]
                                for r in booked.realised
                            ],
                        }
                    ),
                )
            )
