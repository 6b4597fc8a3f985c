"""A household's wash sales read from its books: accounts, lots and transactions in,
washes and the lots as they leave them out. Every figure is worked by hand in the
test's comment; the properties at the end hold for any history."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from poise.domain.accounts import Account, Registration
from poise.domain.lots import TaxLot
from poise.domain.money import cents
from poise.domain.securities import Security, SecurityKind
from poise.domain.transactions import LotRelieved, Transaction, TxnKind
from poise.domain.washhistory import (
    WashHistory,
    book_washes,
    families,
    lot_changes,
    split_parts,
)

D = Decimal
ACCOUNTS = [
    Account("T", "H", Registration.TAXABLE),
    Account("J", "H", Registration.JOINT),
    Account("R", "H", Registration.ROTH_IRA),
    Account("I", "H", Registration.TRADITIONAL_IRA),
]
SECURITIES = {
    s.security_id: s
    for s in (
        Security("AAPL", "AAPL", "Apple", SecurityKind.STOCK, "us_equity"),
        Security("SPYA", "SPYA", "S&P 500 A", SecurityKind.ETF, "us_equity", identity_group="SP"),
        Security("SPYB", "SPYB", "S&P 500 B", SecurityKind.ETF, "us_equity", identity_group="SP"),
    )
}


def _lines(text: str) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in text.strip().splitlines())
    return [line for line in lines if line]


def _lot(line: str) -> TaxLot:
    match line.replace("held since", "since").split():
        case ["lot", key, security, shares, "sh", "cost", cost, acquired, *extra]:
            pairs = dict(zip(extra[::2], extra[1::2], strict=True))
            account_id, lot_id = key.split("/")
            return TaxLot(
                lot_id=lot_id,
                account_id=account_id,
                security_id=security,
                quantity=D(shares),
                cost_basis=D(cost),
                acquired=date.fromisoformat(acquired),
                adjusted_basis=D(pairs["adjusted"]) if "adjusted" in pairs else None,
                holding_start=date.fromisoformat(pairs["since"]) if "since" in pairs else None,
                disallowed_loss=D(pairs.get("disallowed", "0")),
            )
    raise AssertionError(line)


def _transaction(line: str) -> Transaction:
    match line.split():
        case ["buy", key, security, shares, "sh", "for", amount, day]:
            account_id, txn_id = key.split("/")
            on = date.fromisoformat(day)
            return Transaction(
                txn_id, account_id, TxnKind.BUY, on, on, D(amount), security, D(shares)
            )
        case ["sell", key, security, relieved, "for", amount, day]:
            account_id, txn_id = key.split("/")
            on = date.fromisoformat(day)
            if relieved.endswith("sh"):  # a sale that names no lots: "5sh"
                shares, lots = D(relieved.removesuffix("sh")), ()
            else:
                lots = tuple(
                    LotRelieved(item.split(":")[0], D(item.split(":")[1]))
                    for item in relieved.split(";")
                )
                shares = sum((r.quantity for r in lots), D(0))
            return Transaction(
                txn_id, account_id, TxnKind.SELL, on, on, D(amount), security, shares, lots
            )
    raise AssertionError(line)


def lots(text: str) -> list[TaxLot]:
    """Lots, one a line: ``lot T/L1 AAPL 40 sh cost 6000 2022-01-10`` — account/lot,
    security, shares, cost, acquired; then, for a wash's adjustment, ``adjusted 7500
    disallowed 1500 held since 2022-01-24``. ``#`` starts a comment."""
    return [_lot(line) for line in _lines(text) if line.startswith("lot")]


def book(text: str) -> WashHistory:
    """A household's books, one lot or transaction a line: lots as :func:`lots` reads
    them, ``buy J/T3 AAPL 50 sh for 6000 2022-11-15`` (account/transaction) and
    ``sell T/T2 AAPL L1:60 for 7200 2022-11-01`` (the lots relieved, or ``5sh`` for a
    sale that names none)."""
    lines = _lines(text)
    return book_washes(
        accounts=ACCOUNTS,
        lots=lots(text),
        securities=SECURITIES,
        transactions=[_transaction(line) for line in lines if not line.startswith("lot")],
    )


def rebook(history: WashHistory, text: str) -> WashHistory:
    """The same transactions booked again on the lots ``history`` left."""
    lines = [line for line in _lines(text) if not line.startswith("lot")]
    return book_washes(
        accounts=ACCOUNTS,
        lots=list(history.lots),
        securities=SECURITIES,
        transactions=[_transaction(line) for line in lines],
    )


def by_id(history: WashHistory) -> dict[str, TaxLot]:
    return {f"{one.account_id}/{one.lot_id}": one for one in history.lots}


def the(text: str) -> TaxLot:
    (one,) = lots(text)
    return one


# The Garcias' AAPL: 100 shares bought 10 January 2022 for $15,000, 60 sold 1 November
# for $7,200 ($120 a share against $150: a $1,800 loss); the books hold the other 40.
GARCIA = """
    lot  T/L1  AAPL  40 sh  cost 6000  2022-01-10
    buy  T/T1  AAPL  100 sh  for 15000  2022-01-10
    sell T/T2  AAPL  L1:60  for 7200  2022-11-01
"""


def test_book_when_a_joint_account_buys_back_after_a_taxable_loss_then_the_loss_moves_into_it() -> (
    None
):
    # The joint account buys 50 shares on 15 November for $6,000. The loss on 50 of the
    # 60 shares ($1,500) is disallowed and added to them: basis $7,500. The sold shares
    # were held 295 days (10 January to 1 November), so the new ones count as held
    # from 24 January (15 November less 295 days). The loss on the other 10, $300,
    # stands.
    history = book(
        GARCIA
        + """
        lot  J/J1  AAPL  50 sh  cost 6000  2022-11-15
        buy  J/T3  AAPL  50 sh  for 6000  2022-11-15
    """
    )
    (booked,) = history.washes
    wash = booked.wash
    assert (wash.sale.lot_id, wash.sale.quantity, wash.sale.loss) == ("L1", 60, 1800)
    assert (wash.replacement.account_id, wash.replacement.lot_id, wash.shares) == ("J", "J1", 50)
    assert (wash.disallowed, wash.permanent, wash.basis) == (1500, False, 7500)
    assert wash.holding_start == date(2022, 1, 24)
    assert (booked.txn_id, booked.held, booked.stored_as) == ("T2", 50, "J1")
    assert by_id(history)["J/J1"] == the(
        "lot J/J1 AAPL 50 sh cost 6000 2022-11-15 adjusted 7500 disallowed 1500"
        " held since 2022-01-24"
    )
    assert by_id(history)["T/L1"] == the(GARCIA)  # the sold lot keeps its cost
    assert history.unknown == history.unplaced == ()


def test_book_when_an_ira_buys_within_30_days_of_a_taxable_loss_then_it_is_lost_for_good() -> None:
    # Rev. Rul. 2008-5: the IRA's 30 shares, bought 20 November, disallow the loss on 30
    # of the 60 shares ($900) for good; the IRA's lot keeps its cost.
    text = (
        GARCIA
        + """
        lot  I/I1  AAPL  30 sh  cost 3300  2022-11-20
        buy  I/T3  AAPL  30 sh  for 3300  2022-11-20
    """
    )
    history = book(text)
    (booked,) = history.washes
    assert (booked.wash.shares, booked.wash.disallowed, booked.wash.permanent) == (30, 900, True)
    assert booked.wash.basis == 3300
    assert booked.stored_as is None
    assert len(lot_changes(lots(text), history.lots)) == 0


SPLIT = """
    lot  T/L3  SPYA  5 sh  cost 2000  2021-06-15
    sell T/T5  SPYA  L3:20  for 7600  2022-12-01
    lot  J/J2  SPYB  30 sh  cost 11400  2022-12-05
    buy  J/T6  SPYB  30 sh  for 11400  2022-12-05
"""


def test_book_when_part_of_a_lot_replaces_then_those_shares_are_split_off_as_lot_dot_1() -> None:
    # 20 shares of one S&P 500 fund, bought 15 June 2021 for $400 each, sold 1 December
    # 2022 for $380 each: a $400 loss. The joint account buys 30 shares of another S&P
    # 500 fund (the same identity) on 5 December for $11,400. 20 of them replace: they
    # become J2.1 (cost $7,600, basis $8,000, held from 19 June 2021: 534 days before
    # 5 December); the other 10 stay J2 at $3,800.
    history = book(SPLIT)
    (booked,) = history.washes
    assert (booked.wash.disallowed, booked.stored_as) == (400, "J2.1")
    assert [one for one in history.lots if one.account_id == "J"] == lots("""
        lot J/J2.1 SPYB 20 sh cost 7600 2022-12-05 adjusted 8000 disallowed 400 held since 2021-06-19
        lot J/J2   SPYB 10 sh cost 3800 2022-12-05
    """)  # noqa: E501 - a lot line reads best on one line
    # Read back as written, the books give the same lots and washes: nothing to change.
    again = rebook(history, SPLIT)
    assert (again.lots, again.washes) == (history.lots, history.washes)


def test_book_when_a_replacement_is_sold_at_a_loss_then_the_loss_it_carries_is_washed_again() -> (
    None
):
    # 60 AAPL bought 3 January 2022 at $100 are sold 1 June at $80: a $1,200 loss. The
    # joint account buys 100 on 10 June for $8,500: 60 of them take the loss (basis
    # $5,100 + $1,200, held from 12 January: 149 days before 10 June). On 1 August it
    # sells 60 of its 100 for $4,800: the 40 shares no wash took go first ($3,400:
    # a $200 loss, held from 10 June), then 20 replacement shares ($1,700 + $400
    # carried, for $1,600: a $500 loss, held from 12 January). The taxable account's
    # 60 bought 20 August for $4,740 replace both, the earlier held first.
    history = book("""
        lot  T/L1  AAPL  90 sh  cost 9000  2022-01-03
        sell T/T2  AAPL  L1:60  for 4800  2022-06-01
        lot  J/J1  AAPL  40 sh  cost 3400  2022-06-10
        buy  J/T3  AAPL  100 sh  for 8500  2022-06-10
        sell J/T4  AAPL  J1:60  for 4800  2022-08-01
        lot  T/L5  AAPL  60 sh  cost 4740  2022-08-20
        buy  T/T5  AAPL  60 sh  for 4740  2022-08-20
    """)
    first, *again = history.washes
    assert (first.wash.disallowed, first.wash.holding_start) == (1200, date(2022, 1, 12))
    assert [(w.wash.sale.quantity, w.wash.sale.loss, w.wash.sale.held_since) for w in again] == [
        (20, 500, date(2022, 1, 12)),
        (40, 200, date(2022, 6, 10)),
    ]
    # 20 August less the days each part was held before 1 August: 201 and 52.
    assert [(w.wash.shares, w.wash.disallowed, w.wash.holding_start) for w in again] == [
        (20, 500, date(2022, 1, 31)),
        (40, 200, date(2022, 6, 29)),
    ]
    # The 40 replacement shares still held keep their part of the first loss ($800);
    # the taxable account's new lot carries the second sale's losses.
    expected = lots("""
        lot J/J1   AAPL 40 sh cost 3400 2022-06-10 adjusted 4200 disallowed 800 since 2022-01-12
        lot T/L5.1 AAPL 20 sh cost 1580 2022-08-20 adjusted 2080 disallowed 500 since 2022-01-31
        lot T/L5.2 AAPL 40 sh cost 3160 2022-08-20 adjusted 3360 disallowed 200 since 2022-06-29
    """)
    assert history.lots[1:] == tuple(expected)


def test_book_when_a_replacement_lot_is_partly_sold_then_its_other_shares_leave_first() -> None:
    # As above, 20 of 30 shares bought 5 December replace a $400 loss. On 20 December
    # 15 of the 30 are sold for $6,000: the 10 no wash took, then 5 replacement shares.
    # The books' 15 are all replacement shares: the lot keeps its id and carries $300.
    sold_down = SPLIT.replace("30 sh  cost 11400", "15 sh  cost 5700")
    history = book(sold_down + "sell J/T7 SPYB J2:15 for 6000 2022-12-20")
    assert [(w.wash.shares, w.held, w.stored_as) for w in history.washes] == [(20, 15, "J2")]
    assert by_id(history)["J/J2"] == the(
        "lot J/J2 SPYB 15 sh cost 5700 2022-12-05 adjusted 6000 disallowed 300"
        " held since 2021-06-19"
    )


def test_book_when_shares_were_bought_and_sold_before_the_loss_then_they_do_not_replace_it() -> (
    None
):
    # The joint account buys 60 AAPL on 20 October and sells 50 of them on 25 October,
    # before the taxable loss of 1 November: only the 10 it still holds replace, so the
    # loss on 10 shares ($300) is disallowed and on the other 50 ($1,500) allowed. Shares
    # sold on the day of the loss do not replace it either.
    for sold_on in ("2022-10-25", "2022-11-01"):
        history = book(GARCIA + f"""
            lot  J/J5  AAPL  10 sh  cost 1000  2022-10-20
            buy  J/T3  AAPL  60 sh  for 6000  2022-10-20
            sell J/T4  AAPL  J5:50  for 5000  {sold_on}
        """)  # fmt: skip
        assert [(w.wash.shares, w.wash.disallowed) for w in history.washes] == [(10, 300)]


def test_book_when_the_replacement_was_bought_before_the_sold_lot_then_it_still_replaces_it() -> (
    None
):
    # The joint account's 30 shares bought 10 October replace 20 of the 25 bought
    # 15 October and sold 25 October at a $400 loss (§1.1091-1(a): any acquisition
    # within the period). They count as held from 30 September: the 10 days the sold
    # shares were held, before 10 October.
    history = book("""
        lot  J/J6  AAPL  30 sh  cost 3600  2022-10-10
        buy  J/T1  AAPL  30 sh  for 3600  2022-10-10
        lot  T/L7  AAPL  5 sh  cost 650  2022-10-15
        buy  T/T2  AAPL  25 sh  for 3250  2022-10-15
        sell T/T3  AAPL  L7:20  for 2200  2022-10-25
    """)
    (booked,) = history.washes
    wash = booked.wash
    assert (wash.replacement.lot_id, wash.shares, wash.disallowed) == ("J6", 20, 400)
    assert wash.holding_start == date(2022, 9, 30)


def test_book_when_a_sale_relieves_a_lot_the_books_cannot_price_then_it_is_unknown_not_a_loss() -> (
    None
):
    # A sale of a lot the books do not hold, of one they hold with no shares, of one of
    # another security, and one that names no lots: none has a basis, so none is a
    # loss, and the joint account's buy of 16 November washes nothing.
    history = book("""
        lot  T/L2  AAPL  0 sh  cost 0  2022-01-10
        lot  T/L4  SPYA  10 sh  cost 4000  2021-01-04
        sell T/T2  AAPL  L9:10  for 1000  2022-11-01
        sell T/T3  AAPL  L2:10  for 1000  2022-11-02
        sell T/T4  AAPL  L4:10  for 1000  2022-11-03
        sell T/T9  AAPL  5sh  for 600  2022-11-04
        lot  J/J1  AAPL  50 sh  cost 6000  2022-11-16
        buy  J/T5  AAPL  50 sh  for 6000  2022-11-16
    """)
    assert history.washes == ()
    assert [(u.txn_id, u.lot_id, u.shares, u.proceeds, u.reason) for u in history.unknown] == [
        ("T2", "L9", 10, 1000, "the books hold no lot L9"),
        ("T3", "L2", 10, 1000, "lot L2 holds no shares in the books"),
        ("T4", "L4", 10, 1000, "lot L4 is of SPYA, not AAPL"),
        ("T9", "", 5, 600, "the sale names no lots"),
    ]


def test_book_when_a_buy_has_no_lot_in_the_books_then_it_is_reported_and_replaces_nothing() -> None:
    history = book(GARCIA + "buy J/T3 AAPL 50 sh for 6000 2022-11-15")
    assert history.washes == ()
    assert [(b.txn_id, b.account_id, b.bought, b.shares) for b in history.unplaced] == [
        ("T3", "J", date(2022, 11, 15), 50)
    ]


def test_book_when_a_retirement_account_sells_at_a_loss_then_nothing_is_washed() -> None:
    history = book(GARCIA.replace("T/", "R/") + """
        lot  J/J1  AAPL  50 sh  cost 6000  2022-11-15
        buy  J/T3  AAPL  50 sh  for 6000  2022-11-15
    """)  # fmt: skip
    assert history.washes == history.unknown == ()


def test_book_when_a_lot_bought_before_the_history_is_adjusted_then_its_sale_uses_it() -> None:
    # The custodian's lot carries a $1,000 wash adjustment from before the history
    # ($160 a share). 60 shares sold for $7,200 lose $2,400, $40 a share; the joint
    # account's 50 shares take $2,000 of it. The engine never writes to that lot.
    old = "lot T/L1 AAPL 100 sh cost 15000 2020-01-10 adjusted 16000 disallowed 1000 held since 2019-11-01"  # noqa: E501
    history = book(old + """
        sell T/T2  AAPL  L1:60  for 7200  2022-11-01
        lot  J/J1  AAPL  50 sh  cost 6000  2022-11-15
        buy  J/T3  AAPL  50 sh  for 6000  2022-11-15
    """)  # fmt: skip
    (booked,) = history.washes
    assert (booked.wash.sale.loss, booked.wash.sale.held_since) == (2400, date(2019, 11, 1))
    assert booked.wash.disallowed == 2000
    assert by_id(history)["T/L1"] == the(old)


def test_families_when_parts_carry_a_wash_beside_their_lot_then_they_are_one_lot() -> None:
    # J2.1 is a part of J2. A custodian's own L1.2, with no adjustment, and J3.1, of
    # another day than J3, are lots of their own.
    head, part, own, stranger, j3 = lots("""
        lot J/J2   SPYB 10 sh cost 3800 2022-12-05
        lot J/J2.1 SPYB 20 sh cost 7600 2022-12-05 adjusted 8000 disallowed 400 held since 2021-06-19
        lot T/L1.2 AAPL 5 sh cost 500 2022-01-10
        lot J/J3.1 SPYB 1 sh cost 380 2022-12-06 adjusted 400 disallowed 20 held since 2021-06-20
        lot J/J3   SPYB 1 sh cost 380 2022-12-05
    """)  # noqa: E501 - a lot line reads best on one line
    grouped = families([head, part, own, stranger, j3])
    assert grouped[("J", "J2")] == [head, part]
    assert grouped[("T", "L1.2")] == [own]
    assert grouped[("J", "J3.1")] == [stranger]
    assert split_parts([head, part, own], [("J", "J2"), ("T", "L1")]) == [part]


HISTORY_START = date(2024, 1, 1)


@dataclass(slots=True)
class _Held:
    security: str
    shares: int
    cost: Decimal
    bought: date


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[TaxLot], list[Transaction]]:
    """A household's trading over 60 days: buys make lots, sales relieve open lots
    at a random price; the books hold what is left, its cost to the cent (a lot sold
    out is sometimes kept with no shares, sometimes gone). Two securities of one
    identity and one other, in a taxable, a joint and a Roth account."""
    held: dict[tuple[str, str], _Held] = {}
    lines: list[str] = []
    for n in range(draw(st.integers(1, 14))):
        day = HISTORY_START + timedelta(days=draw(st.integers(0, 60)))
        account = draw(st.sampled_from(["T", "J", "R"]))
        price = draw(st.integers(50, 150))
        open_lots = sorted(
            k for k, v in held.items() if k[0] == account and v.shares and v.bought <= day
        )
        if open_lots and draw(st.booleans()):
            key = draw(st.sampled_from(open_lots))
            one = held[key]
            sold = draw(st.integers(1, one.shares))
            lines.append(
                f"sell {account}/S{n} {one.security} {key[1]}:{sold} for {sold * price} {day}"
            )
            one.cost -= cents(one.cost * sold / one.shares)
            one.shares -= sold
            continue
        security = draw(st.sampled_from(["SPYA", "SPYB", "AAPL"]))
        if any(
            k[0] == account and (v.security, v.bought) == (security, day) for k, v in held.items()
        ):
            continue  # one lot a day of a security in an account
        shares = draw(st.integers(1, 100))
        lines.append(f"buy {account}/B{n} {security} {shares} sh for {shares * price} {day}")
        held[(account, f"L{n}")] = _Held(security, shares, D(shares * price), day)
    books = [
        f"lot {key[0]}/{key[1]} {v.security} {v.shares} sh cost {v.cost} {v.bought}"
        for key, v in held.items()
        if v.shares or draw(st.booleans())
    ]
    return lots("\n".join(books)), [_transaction(line) for line in lines]


def totals(found: Sequence[TaxLot]) -> dict[tuple[str, str], tuple[Decimal, Decimal]]:
    """Shares and cost by account and security."""
    shares: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    cost: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for one in found:
        shares[(one.account_id, one.security_id)] += one.quantity
        cost[(one.account_id, one.security_id)] += one.cost_basis
    return {key: (shares[key], cost[key]) for key in shares}


def wash(books: Sequence[TaxLot], transactions: Sequence[Transaction]) -> WashHistory:
    return book_washes(
        accounts=ACCOUNTS, lots=books, securities=SECURITIES, transactions=transactions
    )


@settings(max_examples=300, deadline=None)
@given(histories())
def test_book_property_when_any_history_is_booked_then_shares_and_cost_are_kept_and_it_repeats(
    history: tuple[list[TaxLot], list[Transaction]],
) -> None:
    books, transactions = history
    found = wash(books, transactions)
    before, after = totals(books), totals(found.lots)
    assert before.keys() == after.keys()
    for key, (shares, cost) in before.items():
        assert after[key][0] == shares
        assert abs(after[key][1] - cost) < D("1e-18")
    moved = sum((one.basis - one.cost_basis for one in found.lots), D(0))
    deferred = sum(
        (w.wash.disallowed * w.held / w.wash.shares for w in found.washes if not w.wash.permanent),
        D(0),
    )
    assert abs(moved - deferred) < D("1e-18")
    for booked in found.washes:
        assert booked.wash.sale.account_id in ("T", "J")  # losses are taken where taxed
        assert abs((booked.wash.replacement.acquired - booked.wash.sale.sold).days) <= 30
        assert booked.wash.permanent == (booked.wash.replacement.account_id == "R")
    # Read back as written, the books give the same lots and washes.
    again = wash(found.lots, transactions)
    assert (again.lots, again.washes) == (found.lots, found.washes)
    assert len(lot_changes(found.lots, again.lots)) == 0
    # The custodian sends its lots again, whole: each one's parts give way to it.
    keys = {(one.account_id, one.lot_id) for one in books}
    gone = keys | {(p.account_id, p.lot_id) for p in split_parts(found.lots, keys)}
    resent = [one for one in found.lots if (one.account_id, one.lot_id) not in gone] + books
    assert sorted(wash(resent, transactions).lots, key=repr) == sorted(found.lots, key=repr)


def test_book_when_a_lot_split_by_a_wash_is_sold_by_its_own_id_then_booking_again_repeats() -> None:
    # T's lot L1 (16 SPYA bought 1 January) is split into parts L1.1 and L1.2 by the
    # washes of J's loss the 3rd; T's own sale of L1 on the 2nd still names L1 — the
    # lot the custodian knows, which the books now hold only as its parts. Booked again
    # on the books the first booking left, the sale must find it: the same washes.
    day = date(2024, 1, 1)
    books = [
        TaxLot("L0", "J", "SPYA", D(13), D("663.00"), day),
        TaxLot("L1", "T", "SPYA", D(2), D("102.00"), day),
        TaxLot("L2", "T", "SPYA", D(1), D(50), day + timedelta(days=2)),
    ]

    def trade(
        txn: str, account: str, kind: TxnKind, *, shares: int, amount: str, on: int
    ) -> Transaction:
        when = day + timedelta(days=on)
        relieved = (
            (LotRelieved("L0" if account == "J" else "L1", D(shares)),)
            if kind is TxnKind.SELL
            else ()
        )
        return Transaction(txn, account, kind, when, when, D(amount), "SPYA", D(shares), relieved)

    transactions = [
        trade("B0", "J", TxnKind.BUY, shares=82, amount="4182", on=0),
        trade("B1", "T", TxnKind.BUY, shares=16, amount="816", on=0),
        trade("B2", "T", TxnKind.BUY, shares=1, amount="50", on=2),
        trade("S3", "J", TxnKind.SELL, shares=69, amount="3450", on=2),
        trade("S4", "T", TxnKind.SELL, shares=14, amount="700", on=1),
    ]
    found = wash(books, transactions)
    assert {lot.lot_id for lot in found.lots} == {"L0", "L1.1", "L1.2", "L2"}
    again = wash(found.lots, transactions)
    assert again.unknown == ()
    assert (again.lots, again.washes) == (found.lots, found.washes)
