"""Wash sales that already happened, on the worked examples of Treasury Regulation
§1.1091-1 and §1.1091-2 and IRS Publication 550, and the properties every answer
keeps."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.lots import TaxLot
from poise.domain.washsales import LossSale, Purchase, apply_washes, find_washes

D = Decimal


def bought(lot: str, shares: int, cost: str, on: date, *, account: str = "A1",
           retirement: bool = False, identity: str = "M") -> Purchase:  # fmt: skip
    return Purchase(account, lot, identity, D(shares), D(cost), on, retirement)


def sold(lot: str, shares: int, basis: str, proceeds: str, on: date, *, since: date,
         account: str = "A1", identity: str = "M") -> LossSale:  # fmt: skip
    return LossSale(account, lot, identity, D(shares), D(basis), D(proceeds), on, since)


def test_washsales_when_publication_550_buys_back_100_shares_then_the_loss_moves_into_them() -> (
    None
):
    # Pub. 550: 100 shares bought for $1,000 and sold for $750; within 30 days 100 shares
    # of the same stock bought for $800. The $250 loss is not deductible; the new
    # shares' basis is $800 + $250 = $1,050.
    sale = sold("L1", 100, "1000", "750", date(2024, 3, 1), since=date(2023, 1, 10))
    new = bought("L2", 100, "800", date(2024, 3, 20))
    (wash,) = find_washes([sale], [new])
    assert (wash.shares, wash.disallowed, wash.basis) == (D(100), D(250), D(1050))
    assert not wash.permanent


def test_washsales_when_publication_550_buys_back_50_of_100_then_half_the_loss_is_disallowed() -> (
    None
):
    # Pub. 550: 100 shares bought for $1,000, sold for $750; within 30 days 50 shares
    # bought for $400. The loss on 50 shares, $125, is disallowed and added to the new
    # shares' basis ($525); the other $125 is deductible.
    sale = sold("L1", 100, "1000", "750", date(2024, 3, 1), since=date(2023, 1, 10))
    (wash,) = find_washes([sale], [bought("L2", 50, "400", date(2024, 2, 15))])
    assert (wash.shares, wash.disallowed, wash.basis) == (D(50), D(125), D(525))
    assert sale.loss - wash.disallowed == D(125)


def test_washsales_when_regulation_example_1_sells_the_earlier_lot_then_no_loss_is_allowed() -> (
    None
):
    # §1.1091-1(h) Example (1): 100 shares bought December 1, 1954 for $10,000, 100 more
    # December 15, 1954 for $9,000; the December 1 shares sold January 3, 1955 for
    # $9,000. No loss is allowable: the December 15 shares replace them.
    first = bought("L1", 100, "10000", date(1954, 12, 1))
    second = bought("L2", 100, "9000", date(1954, 12, 15))
    sale = sold("L1", 100, "10000", "9000", date(1955, 1, 3), since=date(1954, 12, 1))
    (wash,) = find_washes([sale], [first, second])
    assert wash.replacement is second  # never its own replacement
    assert wash.disallowed == D(1000)
    assert wash.basis == D(10000)  # $9,000 cost + $1,000 disallowed


def test_washsales_when_regulation_example_2_buys_75_of_100_then_each_lot_gets_its_share() -> None:
    # §1.1091-1(h) Example (2): 100 shares bought September 21, 1954 for $5,000; 50
    # bought December 21, 1954 for $2,750 and 25 on December 27 for $1,125; the 100
    # sold January 3, 1955 for $4,000. The loss on 75 shares ($750) is disallowed, on
    # the other 25 ($250) allowed. Bases: $3,250 for the 50 and $1,375 for the 25.
    sale = sold("L1", 100, "5000", "4000", date(1955, 1, 3), since=date(1954, 9, 21))
    fifty = bought("L2", 50, "2750", date(1954, 12, 21))
    twenty_five = bought("L3", 25, "1125", date(1954, 12, 27))
    washes = find_washes([sale], [twenty_five, fifty])
    assert [(w.replacement.lot_id, w.shares, w.disallowed, w.basis) for w in washes] == [
        ("L2", D(50), D(500), D(3250)),
        ("L3", D(25), D(250), D(1375)),
    ]
    assert sale.loss - sum(w.disallowed for w in washes) == D(250)


def test_washsales_when_regulation_example_3_buys_on_four_days_then_the_first_100_replace() -> None:
    # §1.1091-1(h) Example (3): 100 shares bought September 15, 1954 for $5,000, sold
    # February 1, 1956 for $4,000; 50 shares bought on each of February 15 to 18, 1956,
    # for $2,000 each time. The shares bought February 15 and 16 replace the sold ones;
    # each of those two blocks has a basis of $2,500.
    sale = sold("L1", 100, "5000", "4000", date(1956, 2, 1), since=date(1954, 9, 15))
    days = [bought(f"B{d}", 50, "2000", date(1956, 2, d)) for d in (18, 17, 16, 15)]
    washes = find_washes([sale], days)
    assert [(w.replacement.lot_id, w.basis) for w in washes] == [
        ("B15", D(2500)),
        ("B16", D(2500)),
    ]


def test_washsales_when_regulation_1091_2_buys_back_dearer_or_cheaper_then_basis_follows() -> None:
    # §1.1091-2 Example (1): a share bought for $100, sold January 15, 1955 for $80,
    # another bought February 1, 1955 for $90: its basis is $110. Example (2): bought
    # back for $70: its basis is $90.
    sale = sold("L1", 1, "100", "80", date(1955, 1, 15), since=date(1935, 6, 1))
    for price, basis in (("90", D(110)), ("70", D(90))):
        (wash,) = find_washes([sale], [bought("L2", 1, price, date(1955, 2, 1))])
        assert wash.basis == basis


def test_washsales_when_a_replacement_is_bought_then_its_holding_period_includes_the_sold_one() -> (
    None
):
    # Held 200 days, sold; bought again 10 days later: the new shares count as held
    # 200 days on the day they were bought (§1223(3)).
    sale = sold(
        "L1", 10, "1000", "800", date(2024, 6, 1), since=date(2024, 6, 1) - timedelta(days=200)
    )
    (wash,) = find_washes([sale], [bought("L2", 10, "820", date(2024, 6, 11))])
    assert wash.holding_start == date(2024, 6, 11) - timedelta(days=200)


def test_washsales_when_the_replacement_is_in_a_roth_then_the_loss_is_lost_for_good() -> None:
    # Rev. Rul. 2008-5: the loss is disallowed and the Roth's shares keep their cost.
    sale = sold("L1", 100, "1000", "750", date(2024, 3, 1), since=date(2023, 1, 10))
    roth = bought("R1", 100, "800", date(2024, 3, 5), account="ROTH", retirement=True)
    (wash,) = find_washes([sale], [roth])
    assert wash.permanent
    assert (wash.disallowed, wash.basis) == (D(250), D(800))


def test_washsales_when_bought_outside_the_61_days_or_another_security_then_no_wash() -> None:
    sale = sold("L1", 100, "1000", "750", date(2024, 3, 1), since=date(2023, 1, 10))
    assert find_washes([sale], [bought("L2", 100, "800", date(2024, 3, 31))])  # day 30
    assert not find_washes([sale], [bought("L2", 100, "800", date(2024, 4, 1))])  # day 31
    assert find_washes([sale], [bought("L2", 100, "800", date(2024, 1, 31))])  # day −30
    assert not find_washes([sale], [bought("L2", 100, "800", date(2024, 1, 30))])
    assert not find_washes([sale], [bought("L2", 100, "800", date(2024, 3, 5), identity="N")])


def test_washsales_when_a_sale_gains_then_it_washes_nothing() -> None:
    sale = sold("L1", 100, "1000", "1200", date(2024, 3, 1), since=date(2023, 1, 10))
    assert find_washes([sale], [bought("L2", 100, "800", date(2024, 3, 5))]) == []


def test_washsales_when_two_losses_share_replacements_then_the_earlier_sale_takes_them_first() -> (
    None
):
    # §1.1091-1(b): losses in the order of disposition; one replacement share absorbs
    # one loss share. 60 shares bought back serve the first sale's 50, then 10 of the
    # second's.
    first = sold("L1", 50, "5000", "4000", date(2024, 3, 1), since=date(2023, 1, 10))
    second = sold("L2", 50, "5000", "4500", date(2024, 3, 4), since=date(2023, 1, 10))
    washes = find_washes([second, first], [bought("L3", 60, "4800", date(2024, 3, 10))])
    assert [(w.sale.lot_id, w.shares, w.disallowed) for w in washes] == [
        ("L1", D(50), D(1000)),
        ("L2", D(10), D(100)),
    ]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[LossSale], list[Purchase]]:
    """A household's sales and purchases of one or two identities over 90 days."""
    start = date(2024, 1, 1)
    purchases = [
        Purchase(
            draw(st.sampled_from(["A1", "A2", "IRA"])),
            f"P{k}",
            draw(st.sampled_from(["M", "N"])),
            D(draw(st.integers(1, 200))),
            D(draw(st.integers(0, 50_000))),
            start + timedelta(days=draw(st.integers(0, 90))),
            retirement=draw(st.booleans()),
        )
        for k in range(draw(st.integers(0, 8)))
    ]
    sales = []
    for k in range(draw(st.integers(0, 6))):
        day = start + timedelta(days=draw(st.integers(0, 90)))
        sales.append(
            LossSale(
                draw(st.sampled_from(["A1", "A2"])),
                f"S{k}",
                draw(st.sampled_from(["M", "N"])),
                D(draw(st.integers(1, 200))),
                D(draw(st.integers(0, 50_000))),
                D(draw(st.integers(0, 50_000))),
                day,
                day - timedelta(days=draw(st.integers(0, 900))),
            )
        )
    return sales, purchases


@settings(max_examples=300, deadline=None)
@given(histories())
def test_washsales_property_when_any_history_is_washed_then_shares_and_losses_are_conserved(
    history: tuple[list[LossSale], list[Purchase]],
) -> None:
    sales, purchases = history
    washes = find_washes(sales, purchases)
    used: dict[int, Decimal] = {}
    matched: dict[int, Decimal] = {}
    for wash in washes:
        used[id(wash.replacement)] = used.get(id(wash.replacement), D(0)) + wash.shares
        matched[id(wash.sale)] = matched.get(id(wash.sale), D(0)) + wash.shares
        assert abs((wash.replacement.acquired - wash.sale.sold).days) <= 30
        assert wash.replacement.identity == wash.sale.identity
        cost = wash.replacement.cost * wash.shares / wash.replacement.quantity
        assert wash.basis >= cost  # a wash never lowers a basis below cost
        moved = wash.basis - cost  # the loss moves into basis, or is lost for good
        assert abs(moved + (wash.disallowed if wash.permanent else 0) - wash.disallowed) < D(
            "1e-18"
        )
    assert all(used[id(p)] <= p.quantity for p in purchases if id(p) in used)
    assert all(matched[id(s)] <= s.quantity for s in sales if id(s) in matched)
    for sale in sales:  # the loss disallowed is at most the loss, share for share
        disallowed = sum((w.disallowed for w in washes if w.sale is sale), D(0))
        assert disallowed <= sale.loss
    assert find_washes(sales, purchases) == washes  # the same answer every time


def test_washsales_when_shares_are_sold_from_a_recent_purchase_then_it_does_not_replace_them() -> (
    None
):
    # Rev. Rul. 56-602: 100 shares bought March 1 and 50 of them sold at a loss March 10:
    # the purchase that made the sold shares is not their replacement, nor are the 50
    # of it still held. Another purchase in the window is.
    recent = bought("L1", 100, "10000", date(2024, 3, 1))
    sale = sold("L1", 50, "5000", "4500", date(2024, 3, 10), since=date(2024, 3, 1))
    assert find_washes([sale], [recent]) == []
    other = bought("L2", 20, "1800", date(2024, 3, 20))
    (wash,) = find_washes([sale], [recent, other])
    assert (wash.replacement.lot_id, wash.shares, wash.disallowed) == ("L2", D(20), D(200))


def lot_of(purchase: Purchase) -> TaxLot:
    return TaxLot(purchase.lot_id, purchase.account_id, purchase.identity, purchase.quantity,
                  purchase.cost, purchase.acquired)  # fmt: skip


def test_apply_when_a_lot_is_all_replacement_shares_then_it_keeps_its_id_with_the_loss_added() -> (
    None
):
    # Pub. 550 again: the 100 shares bought back for $800 carry the $250 loss.
    sale = sold("L1", 100, "1000", "750", date(2024, 3, 1), since=date(2023, 1, 10))
    new = bought("L2", 100, "800", date(2024, 3, 20))
    (lot,) = apply_washes([lot_of(new)], find_washes([sale], [new]))
    assert (lot.lot_id, lot.quantity, lot.cost_basis, lot.basis) == ("L2", 100, 800, 1050)
    assert lot.disallowed_loss == 250
    assert lot.held_since == date(2024, 3, 20) - (date(2024, 3, 1) - date(2023, 1, 10))


def test_apply_when_part_of_a_lot_replaces_then_only_those_shares_change() -> None:
    # 60 shares sold at a $10 loss each; 100 bought back for $9,000 in one lot: 60 of
    # them are replacements ($5,400 + $600), the other 40 keep their cost and date.
    sale = sold("L1", 60, "6000", "5400", date(2024, 3, 1), since=date(2023, 1, 10))
    new = bought("L2", 100, "9000", date(2024, 3, 5))
    parts = apply_washes([lot_of(new)], find_washes([sale], [new]))
    assert [(p.lot_id, p.quantity, p.cost_basis, p.basis, p.held_since) for p in parts] == [
        ("L2.1", 60, 5400, 6000, date(2024, 3, 5) - (date(2024, 3, 1) - date(2023, 1, 10))),
        ("L2", 40, 3600, 3600, date(2024, 3, 5)),
    ]


def test_apply_when_the_replacement_is_in_a_roth_then_no_lot_changes() -> None:
    sale = sold("L1", 100, "1000", "750", date(2024, 3, 1), since=date(2023, 1, 10))
    roth = bought("R1", 100, "800", date(2024, 3, 5), account="ROTH", retirement=True)
    assert apply_washes([lot_of(roth)], find_washes([sale], [roth])) == [lot_of(roth)]


@settings(max_examples=200, deadline=None)
@given(histories())
def test_apply_property_when_washes_are_applied_then_shares_and_basis_add_up_and_repeat(
    history: tuple[list[LossSale], list[Purchase]],
) -> None:
    sales, purchases = history
    lots = [lot_of(p) for p in purchases]
    washes = find_washes(sales, purchases)
    after = apply_washes(lots, washes)
    assert sum(lot.quantity for lot in after) == sum(lot.quantity for lot in lots)
    moved = sum((w.disallowed for w in washes if not w.permanent), D(0))
    added = sum((lot.basis - lot.cost_basis for lot in after), D(0))
    assert abs(added - moved) < D("1e-18")  # total basis + loss lost for good, conserved
    assert abs(sum(lot.cost_basis for lot in after) - sum(lot.cost_basis for lot in lots)) < D(
        "1e-18"
    )
    assert all(lot.basis >= lot.cost_basis for lot in after)
    assert apply_washes(lots, find_washes(sales, purchases)) == after
