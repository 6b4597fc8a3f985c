"""Block orders: the trades left for market, one order per security, side and route.

A trade line reads ``P1#1  A1  schwab  buy  100  VTI`` — proposal and sequence,
account, custodian, side, shares, security — then ``lots=L1:60,L2:40`` for the lots a
sale relieves and ``fractional`` for an account that may hold fractions. The firm
sends Schwab's and Fidelity's accounts' orders down two FIX routes; Pershing is its
own. VTI's reference is its $100.00 close, BND's $33.333 (a mid), PENNY's $0.5123.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from poise.domain.errors import ValidationError
from poise.domain.money import D, plain
from poise.domain.orders import (
    BlockOrder,
    LotInstruction,
    OrdType,
    Reference,
    ReleasedTrade,
    Side,
    SkipReason,
    StatementLine,
)
from poise.execute.blocks import BlockPolicy, blocks, limit_price, tick

AT = datetime(2024, 6, 13, 20, 0, tzinfo=UTC)
REFERENCES = {
    "VTI": Reference("VTI", D("100.00"), "close 2024-06-13", AT),
    "BND": Reference("BND", D("33.333"), "mid", AT),
    "PENNY": Reference("PENNY", D("0.5123"), "close 2024-06-13", AT),
}
ROUTES = {"schwab": "SCHW-FIX", "fidelity": "FIDO-FIX"}
LIMITS = BlockPolicy()  # limit orders 2% from the reference
MARKET = BlockPolicy(ord_type=OrdType.MARKET)


def _lines(table: str) -> list[str]:
    return [" ".join(line.split()) for line in table.strip().splitlines() if line.strip()]


def released(table: str) -> list[ReleasedTrade]:
    """Trades left for market, one a line (see the module's text)."""
    trades = []
    for line in _lines(table):
        key, account, custodian, side, quantity, security, *flags = line.split()
        proposal, seq = key.split("#")
        lots: tuple[LotInstruction, ...] = ()
        for flag in flags:
            if flag.startswith("lots="):
                lots = tuple(
                    LotInstruction(lot, D(qty))
                    for lot, qty in (part.split(":") for part in flag[5:].split(","))
                )
            else:
                assert flag == "fractional", line
        trades.append(
            ReleasedTrade(
                proposal_id=proposal,
                seq=int(seq),
                account_id=account,
                household_id=f"H-{account}",
                custodian=custodian,
                registration="taxable",
                cross_consent=True,
                security_id=security,
                identity=security,
                side=Side(side),
                quantity=D(quantity),
                price=D("100"),
                lots=lots,
                whole="fractional" not in flags,
            )
        )
    return trades


def orders(made: tuple[BlockOrder, ...]) -> list[str]:
    """``VTI buy 450 SCHW-FIX limit 102.00`` — one block a line."""
    return [
        " ".join(
            [
                b.security_id,
                b.side,
                plain(b.quantity),
                b.route,
                b.ord_type,
                "-" if b.limit is None else str(b.limit),
            ]
        )
        for b in made
    ]


def statement(block: BlockOrder) -> list[str]:
    """``A1 P1#1 100`` — account, trade, shares, and a sale's lots."""
    rows = []
    for line in block.statement:
        lots = ",".join(f"{lot.lot_id}:{plain(lot.quantity)}" for lot in line.lots)
        words = [line.account_id, f"{line.proposal_id}#{line.seq}", plain(line.quantity)]
        rows.append(" ".join([*words, lots] if lots else words))
    return rows


def make(
    text: str, policy: BlockPolicy = LIMITS, references: dict[str, Reference] = REFERENCES
) -> tuple[tuple[BlockOrder, ...], tuple[tuple[str, SkipReason], ...]]:
    made, skipped = blocks(released(text), references, ROUTES, policy, batch_id="R1")
    return made, tuple((f"{s.proposal_id}#{s.seq}", s.reason) for s in skipped)


# --- aggregation ----------------------------------------------------------------------


def test_blocks_when_accounts_at_two_custodians_buy_then_one_block_a_route() -> None:
    made, skipped = make("""
        P1#1  A3  schwab    buy  100  VTI
        P1#2  A1  schwab    buy  250  VTI
        P2#1  B1  fidelity  buy   40  VTI
        P3#1  C1  pershing  buy   10  VTI
        P1#3  A2  schwab    buy  100  VTI
    """)

    assert orders(made) == _lines("""
        VTI  buy  40   FIDO-FIX  limit  102.00
        VTI  buy  450  SCHW-FIX  limit  102.00
        VTI  buy  10   pershing  limit  102.00
    """)
    assert statement(made[1]) == _lines("""
        A1  P1#2  250
        A2  P1#3  100
        A3  P1#1  100
    """)
    assert all(sum(line.quantity for line in b.statement) == b.quantity for b in made)
    assert skipped == ()


def test_blocks_when_one_route_buys_and_sells_then_each_side_is_its_own_block() -> None:
    made, _ = make("""
        P1#1  A1  schwab  sell  70  VTI  lots=L1:50,L2:20
        P2#1  B1  schwab  buy   30  VTI
        P3#1  C1  schwab  sell  12  BND
    """)

    assert orders(made) == _lines("""
        BND  sell  12  SCHW-FIX  limit  32.67
        VTI  buy   30  SCHW-FIX  limit  102.00
        VTI  sell  70  SCHW-FIX  limit  98.00
    """)
    # The statement names the lots each sale relieves, for the custodian.
    assert statement(made[2]) == ["A1 P1#1 70 L1:50,L2:20"]


def test_blocks_when_some_quantities_are_fractions_then_they_go_in_a_block_of_their_own() -> None:
    made, _ = make("""
        P1#1  A1  schwab  buy  10     VTI  fractional
        P2#1  B1  schwab  buy  20     VTI
        P3#1  C1  schwab  buy  0.375  VTI  fractional
        P4#1  D1  schwab  buy  1.5    VTI  fractional
    """)

    assert [(plain(b.quantity), b.whole) for b in made] == [("30", True), ("1.875", False)]
    assert statement(made[1]) == ["C1 P3#1 0.375", "D1 P4#1 1.5"]
    assert made[0].block_id != made[1].block_id


def test_blocks_when_made_twice_or_shuffled_then_the_same_blocks_and_ids() -> None:
    trades = released("""
        P1#1  A1  schwab    buy   100  VTI
        P2#1  B1  schwab    buy   200  VTI
        P3#1  C1  fidelity  sell   50  BND  lots=L9:50
    """)
    first = blocks(trades, REFERENCES, ROUTES, LIMITS, batch_id="R1")
    for seed in range(5):
        shuffled = list(trades)
        random.Random(seed).shuffle(shuffled)
        assert blocks(shuffled, REFERENCES, ROUTES, LIMITS, batch_id="R1") == first
    other, _ = blocks(trades, REFERENCES, ROUTES, LIMITS, batch_id="R2")
    assert {b.block_id for b in first[0]}.isdisjoint(b.block_id for b in other)
    assert first[0][0].block_id.startswith("R1-BND-sell-FIDO-FIX-")


def test_blocks_when_a_trade_is_released_twice_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="released twice"):
        make("""
            P1#1  A1  schwab  buy  100  VTI
            P1#1  A1  schwab  buy  100  VTI
        """)


# --- limit prices at the collar -------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "reference", "collar", "limit"),
    [
        # $100.00 ± 2%: exactly on the cent.
        (Side.BUY, "100.00", "0.02", "102.00"),
        (Side.SELL, "100.00", "0.02", "98.00"),
        # $33.333 ± 2% is 33.99966 and 32.66634: a buy's limit down, a sale's up, so
        # neither stands further out than 2%.
        (Side.BUY, "33.333", "0.02", "33.99"),
        (Side.SELL, "33.333", "0.02", "32.67"),
        # Under a dollar the tick is $0.0001: 0.522546 and 0.502054.
        (Side.BUY, "0.5123", "0.02", "0.5225"),
        (Side.SELL, "0.5123", "0.02", "0.5021"),
        # No collar: at the reference, or a tick nearer the market's side of it.
        (Side.BUY, "10.005", "0", "10.00"),
        (Side.SELL, "10.005", "0", "10.01"),
    ],
)
def test_limit_price_when_collared_then_never_further_from_the_reference_than_the_collar(
    side: Side, reference: str, collar: str, limit: str
) -> None:
    assert limit_price(side, D(reference), D(collar)) == D(limit)


def test_tick_when_the_reference_is_under_a_dollar_then_a_hundredth_of_a_cent() -> None:
    assert (tick(D("1.00")), tick(D("0.9999"))) == (D("0.01"), D("0.0001"))


def test_blocks_when_priced_under_a_dollar_then_the_limit_is_in_sub_penny_ticks() -> None:
    made, _ = make("P1#1  A1  schwab  buy  1000  PENNY")

    assert made[0].limit == D("0.5225")
    assert made[0].reference == D("0.5123")


def test_block_policy_when_the_collar_is_not_a_fraction_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="collar"):
        BlockPolicy(collar=D("1"))
    with pytest.raises(ValidationError, match="collar"):
        BlockPolicy(collar=D("-0.01"))


# --- market orders, and no reference --------------------------------------------------


def test_blocks_when_market_orders_then_no_limit_but_the_reference_is_kept() -> None:
    made, _ = make("P1#1  A1  schwab  buy  100  VTI", MARKET)

    assert orders(made) == ["VTI buy 100 SCHW-FIX market -"]
    assert made[0].reference == D("100.00")
    assert made[0].notional == D("10000.00")


@pytest.mark.parametrize("policy", [LIMITS, MARKET], ids=["limit", "market"])
def test_blocks_when_a_security_has_no_reference_then_its_trades_are_left_out(
    policy: BlockPolicy,
) -> None:
    made, skipped = make(
        """
        P1#1  A1  schwab  buy  100  VTI
        P2#1  B1  schwab  buy   10  GONE
        """,
        policy,
        references={"VTI": REFERENCES["VTI"]},
    )

    assert [b.security_id for b in made] == ["VTI"]
    assert skipped == (("P2#1", SkipReason.NO_REFERENCE),)


# --- a block checks itself ------------------------------------------------------------


def _block(**changes: object) -> BlockOrder:
    fields: dict[str, object] = {
        "block_id": "B1",
        "route": "SCHW-FIX",
        "security_id": "VTI",
        "side": Side.BUY,
        "quantity": D("10"),
        "ord_type": OrdType.LIMIT,
        "limit": D("102.00"),
        "reference": D("100.00"),
        "statement": (StatementLine("P1", 1, "A1", D("6")), StatementLine("P2", 1, "B1", D("4"))),
    }
    fields.update(changes)
    return BlockOrder(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantity": D("11")}, "statement has 10 shares, not 11"),
        ({"limit": None}, "a limit order has a limit"),
        ({"ord_type": OrdType.MARKET}, "a limit order has a limit"),
        ({"limit": D("0")}, "limit must be positive"),
        ({"reference": D("0")}, "reference price must be positive"),
        ({"statement": (), "quantity": D("10")}, "allocation statement"),
        (
            {
                "side": Side.BUY,
                "statement": (
                    StatementLine("P1", 1, "A1", D("10"), (LotInstruction("L1", D("10")),)),
                ),
            },
            "relieves no lots",
        ),
    ],
)
def test_block_order_when_it_breaks_a_rule_of_its_type_then_it_is_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _block(**changes)


def test_block_order_when_a_line_is_a_fraction_then_it_is_not_a_whole_share_block() -> None:
    lines = (StatementLine("P1", 1, "A1", D("6")), StatementLine("P2", 1, "B1", D("0.5")))

    assert _block().whole
    assert not _block(quantity=Decimal("6.5"), statement=lines).whole
