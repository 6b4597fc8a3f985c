"""Execution's planning invariants, for any batch of released trades and any fills.

A firm of a few accounts in a few households, at two custodians, with every
registration and either answer to cross consent, releases a batch of buys and sells
of three securities (whole shares mostly, fractions sometimes; sales with or without
named lots, at a loss or not). Whatever the batch:

* crossing conserves shares and lots: what a trade crosses and what is left of it for
  market add up to what was released, lot by lot;
* a cross balances, is priced at the reference, and holds only accounts that may
  cross — never an account on both sides, never a loss sale with a buy of its own
  household;
* every trade left for market is in exactly one block's statement, or skipped for
  want of a reference; no limit stands past its collar;
* a block's fills are allocated to the share and the cent: Σ allocated = Σ filled,
  Σ gross = the fills' notional to the cent, Σ commission = the fills' commission,
  nobody gets more than their statement line or a price other than the average;
* the same inputs in another order give the same result.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.money import CENT, ZERO, cents
from poise.domain.orders import (
    MICRO_SHARE,
    BlockOrder,
    Cross,
    Fill,
    LotInstruction,
    Reference,
    ReleasedTrade,
    Side,
    SkipReason,
    is_whole,
)
from poise.execute.allocation import allocate, average_price
from poise.execute.blocks import BlockPolicy, blocks
from poise.execute.crossing import CrossPolicy, cross
from poise.execute.safety import BreachKind, Limits, check_run

AT = datetime(2024, 6, 13, 20, 0, tzinfo=UTC)
SECURITIES = ("VTI", "BND", "VXUS")
PRICES = {"VTI": Decimal("220.10"), "BND": Decimal("72.45"), "VXUS": Decimal("0.6137")}
REGISTRATIONS = ("taxable", "joint", "trust", "traditional_ira", "roth_ira", "401k")
ROUTES = {"schwab": "SCHW-FIX"}


@dataclass(frozen=True)
class Account:
    account_id: str
    household_id: str
    custodian: str
    registration: str
    cross_consent: bool  # three in four consent


@dataclass(frozen=True)
class Batch:
    trades: list[ReleasedTrade]
    references: dict[str, Reference]
    policy: CrossPolicy


def _micro(n: int) -> Decimal:
    return Decimal(n) * MICRO_SHARE


@st.composite
def lots_of(draw: st.DrawFn, quantity: Decimal, whole: bool) -> tuple[LotInstruction, ...]:
    """Named lots holding ``quantity``, or none named."""
    if not draw(st.booleans()):
        return ()
    unit = Decimal(1) if whole else MICRO_SHARE
    units = int(quantity / unit)
    cuts = sorted(draw(st.sets(st.integers(1, units - 1), max_size=2)) if units > 1 else set())
    bounds = [0, *cuts, units]
    return tuple(
        LotInstruction(f"L{n}", unit * (high - low))
        for n, (low, high) in enumerate(pairwise(bounds), start=1)
    )


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    accounts = [
        Account(
            account_id=f"A{n}",
            household_id=draw(st.sampled_from(["H1", "H2", "H3"])),
            custodian=draw(st.sampled_from(["schwab", "fidelity"])),
            registration=draw(st.sampled_from(REGISTRATIONS[:3] if n % 2 else REGISTRATIONS)),
            cross_consent=draw(st.integers(0, 3)) < 3,
        )
        for n in range(1, draw(st.integers(3, 8)) + 1)
    ]
    trades = []
    for n in range(draw(st.integers(1, 16))):
        account = accounts[draw(st.integers(0, len(accounts) - 1)) - n % len(accounts)]
        security = draw(st.sampled_from(SECURITIES[:2] if n % 3 else SECURITIES))
        side = draw(st.sampled_from(list(Side)))
        whole = draw(st.integers(0, 4)) > 0
        quantity = (
            Decimal(draw(st.integers(1, 400)))
            if whole
            else _micro(draw(st.integers(1, 400_000_000)))
        )
        sells = side is Side.SELL
        trades.append(
            ReleasedTrade(
                proposal_id=f"P{draw(st.integers(1, 3))}",
                seq=n,
                security_id=security,
                identity=security,
                side=side,
                quantity=quantity,
                price=PRICES[security],
                loss=sells and draw(st.booleans()),
                lots=draw(lots_of(quantity, whole)) if sells else (),
                whole=whole,
                account_id=account.account_id,
                household_id=account.household_id,
                custodian=account.custodian,
                registration=account.registration,
                cross_consent=account.cross_consent,
            )
        )
    every = draw(st.integers(0, 3)) < 3
    priced = set(SECURITIES) if every else draw(st.sets(st.sampled_from(SECURITIES)))
    references = {s: Reference(s, PRICES[s], "close 2024-06-13", AT) for s in sorted(priced)}
    policy = CrossPolicy(enabled=draw(st.integers(0, 5)) < 5)
    return Batch(draw(st.permutations(trades)), references, policy)


def _crossed(crosses: tuple[Cross, ...]) -> dict[tuple[str, int], Decimal]:
    done: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for made in crosses:
        for leg in made.legs:
            done[(leg.proposal_id, leg.seq)] += leg.quantity
    return done


def _lots(*groups: tuple[LotInstruction, ...]) -> dict[str, Decimal]:
    """Shares by lot, over all ``groups``."""
    held: dict[str, Decimal] = defaultdict(Decimal)
    for group in groups:
        for lot in group:
            held[lot.lot_id] += lot.quantity
    return dict(held)


# --- crossing -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(batches())
def test_cross_conserves_every_trade_s_shares_and_lots(batch: Batch) -> None:
    crosses, remaining, _ = cross(batch.trades, batch.references, batch.policy, batch_id="R1")
    done = _crossed(crosses)
    left = {t.key: t for t in remaining}
    legs = {(leg.proposal_id, leg.seq): leg for made in crosses for leg in made.legs}

    for trade in batch.trades:
        rest = left.get(trade.key)
        assert done.get(trade.key, ZERO) + (rest.quantity if rest else ZERO) == trade.quantity
        if trade.whole:
            assert is_whole(done.get(trade.key, ZERO))
        if trade.lots:
            leg = legs.get(trade.key)
            assert _lots(leg.lots if leg else (), rest.lots if rest else ()) == _lots(trade.lots)
        if rest is not None:
            assert rest == trade or rest.quantity < trade.quantity
    assert set(left) <= {t.key for t in batch.trades}


@settings(max_examples=200, deadline=None)
@given(batches())
def test_cross_holds_only_accounts_that_may_cross_at_the_reference(batch: Batch) -> None:
    crosses, _, skipped = cross(batch.trades, batch.references, batch.policy, batch_id="R1")
    trades = {t.key: t for t in batch.trades}

    if not batch.policy.enabled:
        assert crosses == ()
    for made in crosses:
        assert made.price == batch.references[made.security_id].price
        buys = sum(leg.quantity for leg in made.side(Side.BUY))
        sells = sum(leg.quantity for leg in made.side(Side.SELL))
        assert buys == sells == made.quantity
        legs = [trades[(leg.proposal_id, leg.seq)] for leg in made.legs]
        assert all(t.security_id == made.security_id for t in legs)
        assert all(t.cross_consent for t in legs)
        assert not any(t.registration in batch.policy.excluded_registrations for t in legs)
        buyers = {t.account_id for t in legs if t.side is Side.BUY}
        assert buyers.isdisjoint(t.account_id for t in legs if t.side is Side.SELL)
        buying = {t.household_id for t in legs if t.side is Side.BUY}
        assert not any(t.loss and t.household_id in buying for t in legs if t.side is Side.SELL)

    crossed = set(_crossed(crosses))
    told = [(s.proposal_id, s.seq) for s in skipped]
    assert len(told) == len(set(told))
    assert crossed.isdisjoint(told)


@settings(max_examples=100, deadline=None)
@given(batches(), st.randoms(use_true_random=False))
def test_cross_gives_the_same_result_whatever_order_the_trades_come_in(
    batch: Batch, rng: Random
) -> None:
    shuffled = list(batch.trades)
    rng.shuffle(shuffled)

    assert cross(shuffled, batch.references, batch.policy, batch_id="R1") == cross(
        batch.trades, batch.references, batch.policy, batch_id="R1"
    )


# --- blocks ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(batches())
def test_blocks_put_every_trade_for_market_in_exactly_one_statement(batch: Batch) -> None:
    _, remaining, _ = cross(batch.trades, batch.references, batch.policy, batch_id="R1")
    made, skipped = blocks(remaining, batch.references, ROUTES, BlockPolicy(), batch_id="R1")

    written = Counter((line.proposal_id, line.seq) for b in made for line in b.statement)
    left_out = {(s.proposal_id, s.seq) for s in skipped}
    assert all(s.reason is SkipReason.NO_REFERENCE for s in skipped)
    for trade in remaining:
        assert written[trade.key] + (trade.key in left_out) == 1
        assert (trade.security_id in batch.references) == (trade.key not in left_out)
    for b in made:
        assert sum(line.quantity for line in b.statement) == b.quantity
        lines = {(line.proposal_id, line.seq): line for line in b.statement}
        for trade in remaining:
            if trade.key in lines:
                assert (trade.security_id, trade.side) == (b.security_id, b.side)
                assert ROUTES.get(trade.custodian, trade.custodian) == b.route
                assert lines[trade.key].quantity == trade.quantity
                assert lines[trade.key].lots == trade.lots
    assert len({b.block_id for b in made}) == len(made)
    collars = check_run(made, Limits(max_notional=Decimal(10**12), collar=BlockPolicy().collar))
    assert not [b for b in collars if b.kind is BreachKind.COLLAR]


@settings(max_examples=100, deadline=None)
@given(batches(), st.randoms(use_true_random=False))
def test_blocks_are_the_same_whatever_order_the_trades_come_in(batch: Batch, rng: Random) -> None:
    shuffled = list(batch.trades)
    rng.shuffle(shuffled)

    assert blocks(shuffled, batch.references, ROUTES, BlockPolicy(), batch_id="R1") == blocks(
        batch.trades, batch.references, ROUTES, BlockPolicy(), batch_id="R1"
    )


# --- allocation -----------------------------------------------------------------------


@st.composite
def filled_blocks(draw: st.DrawFn) -> tuple[BlockOrder, list[Fill]]:
    """A block the planner made, and the fills of some or all of it."""
    batch = draw(batches())
    made, _ = blocks(batch.trades, batch.references, ROUTES, BlockPolicy(), batch_id="R1")
    if not made:
        batch = Batch(
            [batch.trades[0]],
            {s: Reference(s, PRICES[s], "mid", AT) for s in SECURITIES},
            batch.policy,
        )
        made, _ = blocks(batch.trades, batch.references, ROUTES, BlockPolicy(), batch_id="R1")
    widest = max(made, key=lambda b: (len(b.statement), b.block_id))
    block = widest if draw(st.booleans()) else draw(st.sampled_from(made))
    unit = Decimal(1) if block.whole else MICRO_SHARE
    ordered = int(block.quantity / unit)
    total = draw(st.integers(0, ordered))
    cuts = sorted(draw(st.sets(st.integers(1, total - 1), max_size=3)) if total > 1 else set())
    bounds = [0, *cuts, total] if total else []
    tick = CENT if block.reference >= 1 else Decimal("0.0001")
    fills = [
        Fill(
            exec_id=f"E{n}",
            quantity=unit * (high - low),
            price=block.reference + tick * draw(st.integers(-50, 50)),
            commission=CENT * draw(st.integers(0, 2_000)),
            security_id=block.security_id,
            side=block.side,
        )
        for n, (low, high) in enumerate(pairwise(bounds), start=1)
    ]
    return block, draw(st.permutations(fills))


@settings(max_examples=300, deadline=None)
@given(filled_blocks())
def test_allocate_shares_fills_out_to_the_share_and_the_cent(
    case: tuple[BlockOrder, list[Fill]],
) -> None:
    block, fills = case
    made = allocate(block, fills)
    if not fills:
        assert made == ()
        return
    filled = sum((f.quantity for f in fills), ZERO)
    notional = sum((f.quantity * f.price for f in fills), ZERO)

    assert sum((a.quantity for a in made), ZERO) == filled
    assert sum((a.gross for a in made), ZERO) == cents(notional)
    assert sum((a.commission for a in made), ZERO) == cents(
        sum((f.commission for f in fills), ZERO)
    )
    lines = {(line.proposal_id, line.seq): line for line in block.statement}
    average = average_price(fills)
    for a in made:
        line = lines[(a.proposal_id, a.seq)]
        assert ZERO < a.quantity <= line.quantity
        assert a.account_id == line.account_id
        assert a.price == average
        assert abs(a.gross - a.quantity * notional / filled) < CENT
        assert a.net == (a.gross + a.commission if a.side is Side.BUY else a.gross - a.commission)
        if block.whole:
            assert is_whole(a.quantity)
        if line.lots:
            assert sum(lot.quantity for lot in a.lots) == a.quantity
            named = _lots(line.lots)
            assert all(quantity <= named[lot] for lot, quantity in _lots(a.lots).items())
    # The odd shares went to the largest fractions cut off: each account got its exact
    # pro-rata share rounded down or up, and no account rounded down lost a larger
    # fraction than one rounded up.
    unit = Decimal(1) if block.whole else MICRO_SHARE
    got = {(a.proposal_id, a.seq): a.quantity for a in made}
    cut_off: dict[bool, list[Fraction]] = {True: [], False: []}
    for key, line in lines.items():
        exact = Fraction(line.quantity) * Fraction(filled) / Fraction(block.quantity)
        floor = math.floor(exact / Fraction(unit)) * Fraction(unit)
        share = Fraction(got.get(key, ZERO))
        assert share in {floor, floor + Fraction(unit)}
        cut_off[share > floor].append(exact - floor)
    if cut_off[True] and cut_off[False]:
        assert min(cut_off[True]) >= max(cut_off[False])
    if filled == block.quantity:
        assert [(a.proposal_id, a.seq, a.quantity) for a in made] == [
            (line.proposal_id, line.seq, line.quantity)
            for line in sorted(block.statement, key=lambda line: line.key)
        ]


@settings(max_examples=100, deadline=None)
@given(filled_blocks(), st.randoms(use_true_random=False))
def test_allocate_is_the_same_whatever_order_the_fills_come_in(
    case: tuple[BlockOrder, list[Fill]], rng: Random
) -> None:
    block, fills = case
    shuffled = list(fills)
    rng.shuffle(shuffled)

    assert allocate(block, shuffled) == allocate(block, fills)
