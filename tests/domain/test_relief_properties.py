"""Lot relief invariants, for any holding, any booking method and any sale that fits.

Shares and basis are conserved to the last digit, no lot is sold twice or beyond
what it held, and the proceeds are ``price × quantity`` to the cent, shared out.
Costs are in whole cents, as custodians report them; quantities go to a thousandth
of a share and prices to a hundredth of a cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from poise.domain.lots import TaxLot
from poise.domain.money import ZERO, cents
from poise.domain.relief import Method, ReliefResult, Term, is_long_term, relieve

ACCOUNT = "ACC-1001"
SECURITY = "VTI"
EARLIEST = date(2015, 1, 1)


@dataclass(frozen=True)
class Sale:
    lots: list[TaxLot]
    quantity: Decimal
    method: Method
    price: Decimal
    sold: date
    specific: dict[str, Decimal] | None

    def run(self) -> ReliefResult:
        return relieve(
            self.lots,
            self.quantity,
            method=self.method,
            price=self.price,
            sold=self.sold,
            specific=self.specific,
        )


def _thousandths(n: int) -> Decimal:
    return Decimal(n).scaleb(-3)


@st.composite
def holdings(draw: st.DrawFn) -> list[TaxLot]:
    count = draw(st.integers(min_value=1, max_value=6))
    lots = []
    for number in range(1, count + 1):
        acquired = draw(st.dates(EARLIEST, date(2024, 12, 31)))
        cost = Decimal(draw(st.integers(0, 100_000_000))).scaleb(-2)
        washed = draw(st.booleans())
        disallowed = Decimal(draw(st.integers(1, 5_000_000))).scaleb(-2) if washed else ZERO
        lots.append(
            TaxLot(
                lot_id=f"L{number}",
                account_id=ACCOUNT,
                security_id=SECURITY,
                quantity=_thousandths(draw(st.integers(1, 1_000_000))),
                cost_basis=cost,
                acquired=acquired,
                adjusted_basis=cost + disallowed if washed else None,
                holding_start=draw(st.dates(EARLIEST, acquired)) if washed else None,
                disallowed_loss=disallowed,
            )
        )
    return draw(st.permutations(lots))


@st.composite
def sales(draw: st.DrawFn, methods: tuple[Method, ...] = tuple(Method)) -> Sale:
    lots = draw(holdings())
    method = draw(st.sampled_from(methods))
    specific: dict[str, Decimal] | None = None
    if method is Method.SPECIFIC:
        specific = {}
        for lot in lots:
            take = draw(st.integers(0, int(lot.quantity.scaleb(3))))
            if take:
                specific[lot.lot_id] = _thousandths(take)
        assume(specific)
        quantity = sum(specific.values(), ZERO)
    else:
        held = sum((lot.quantity for lot in lots), ZERO)
        quantity = _thousandths(draw(st.integers(1, int(held.scaleb(3)))))
    return Sale(
        lots=lots,
        quantity=quantity,
        method=method,
        price=Decimal(draw(st.integers(0, 10_000_000))).scaleb(-4),
        sold=draw(st.dates(EARLIEST, date(2026, 12, 31))),
        specific=specific,
    )


@settings(max_examples=200, deadline=None)
@given(sales())
def test_relieve_when_any_sale_fits_the_holding_then_every_share_is_accounted_for(
    sale: Sale,
) -> None:
    result = sale.run()

    before = {lot.lot_id: lot for lot in sale.lots}
    after = {lot.lot_id: lot for lot in result.remaining}
    taken = {r.lot_id: r.quantity for r in result.reliefs}

    assert result.quantity == sale.quantity
    assert len(taken) == len(result.reliefs)  # no lot is relieved twice
    for lot_id, lot in before.items():
        left = after[lot_id].quantity if lot_id in after else ZERO
        assert taken.get(lot_id, ZERO) + left == lot.quantity
        if lot_id in taken:
            assert ZERO < taken[lot_id] <= lot.quantity
    assert all(lot.quantity > ZERO for lot in result.remaining)  # emptied lots are gone
    assert set(after) <= set(before)
    if sale.specific is not None:
        assert taken == sale.specific


@settings(max_examples=200, deadline=None)
@given(sales())
def test_relieve_when_any_sale_fits_the_holding_then_basis_and_cost_are_conserved_exactly(
    sale: Sale,
) -> None:
    result = sale.run()

    after = {lot.lot_id: lot for lot in result.remaining}
    basis_taken = {r.lot_id: r.basis for r in result.reliefs}
    for lot in sale.lots:
        left = after.get(lot.lot_id)
        assert basis_taken.get(lot.lot_id, ZERO) + (left.basis if left else ZERO) == lot.basis
        if left is not None:
            assert ZERO <= left.cost_basis <= lot.cost_basis
            assert ZERO <= left.disallowed_loss <= lot.disallowed_loss
            assert left.acquired == lot.acquired
            assert left.held_since == lot.held_since
    total_before = sum((lot.basis for lot in sale.lots), ZERO)
    total_after = sum((lot.basis for lot in result.remaining), ZERO)
    assert sum((r.basis for r in result.reliefs), ZERO) + total_after == total_before


@settings(max_examples=200, deadline=None)
@given(sales())
def test_relieve_when_any_sale_fits_the_holding_then_proceeds_are_price_times_shares_to_the_cent(
    sale: Sale,
) -> None:
    result = sale.run()

    assert result.proceeds == cents(sale.price * sale.quantity)
    assert all(r.proceeds == cents(r.proceeds) for r in result.reliefs)
    basis = sum((r.basis for r in result.reliefs), ZERO)
    assert result.gain() == result.proceeds - basis
    assert result.gain(Term.SHORT) + result.gain(Term.LONG) == result.gain()
    held_since = {lot.lot_id: lot.held_since for lot in sale.lots}
    for r in result.reliefs:
        long_term = is_long_term(held_since[r.lot_id], sale.sold)
        assert r.term is (Term.LONG if long_term else Term.SHORT)


@settings(max_examples=200, deadline=None)
@given(sales(methods=(Method.FIFO, Method.LIFO, Method.HIFO, Method.TAX_MIN)))
def test_relieve_when_method_orders_lots_then_only_the_last_lot_relieved_is_split(
    sale: Sale,
) -> None:
    result = sale.run()

    held = {lot.lot_id: lot.quantity for lot in sale.lots}
    *whole, last = result.reliefs
    assert all(r.quantity == held[r.lot_id] for r in whole)
    assert last.quantity <= held[last.lot_id]


@settings(max_examples=200, deadline=None)
@given(sales(methods=(Method.FIFO, Method.LIFO, Method.HIFO)))
def test_relieve_when_method_orders_lots_then_no_untouched_lot_ranks_ahead_of_a_sold_one(
    sale: Sale,
) -> None:
    result = sale.run()

    sold_ids = {r.lot_id for r in result.reliefs}
    sold = [lot for lot in sale.lots if lot.lot_id in sold_ids]
    untouched = [lot for lot in sale.lots if lot.lot_id not in sold_ids]
    assume(untouched)
    if sale.method is Method.FIFO:
        assert max(lot.acquired for lot in sold) <= min(lot.acquired for lot in untouched)
    elif sale.method is Method.LIFO:
        assert min(lot.acquired for lot in sold) >= max(lot.acquired for lot in untouched)
    else:
        dearest_left = max(lot.basis_per_share for lot in untouched)
        assert min(lot.basis_per_share for lot in sold) >= dearest_left


@settings(max_examples=200, deadline=None)
@given(sales(methods=(Method.TAX_MIN,)))
def test_relieve_tax_min_when_any_sale_then_no_untouched_loss_is_left_behind_a_sold_gain(
    sale: Sale,
) -> None:
    result = sale.run()

    sold_ids = {r.lot_id for r in result.reliefs}
    untouched = [lot for lot in sale.lots if lot.lot_id not in sold_ids]
    sold_a_gain = any(
        lot.basis_per_share < sale.price for lot in sale.lots if lot.lot_id in sold_ids
    )
    if sold_a_gain:
        assert all(lot.basis_per_share < sale.price for lot in untouched)
