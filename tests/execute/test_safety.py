"""Safety limits: what no run may send, each example a run of a few blocks.

A block line reads ``VTI  buy  1000  limit 102.00  ref 100.00`` (or ``market`` with
no price): security, side, shares, order type and limit, reference price.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from poise.domain.errors import ValidationError
from poise.domain.money import D
from poise.domain.orders import BlockOrder, OrdType, Side, StatementLine
from poise.execute.blocks import limit_price
from poise.execute.safety import Breach, BreachKind, Limits, check_run, child_allowed


def run(table: str) -> list[BlockOrder]:
    made = []
    for number, line in enumerate(table.strip().splitlines(), start=1):
        match line.split():
            case [security, side, quantity, "limit", limit, "ref", reference]:
                ord_type, price = OrdType.LIMIT, D(limit)
            case [security, side, quantity, "market", "ref", reference]:
                ord_type, price = OrdType.MARKET, None
            case _:
                raise AssertionError(f"not a block: {line!r}")
        made.append(
            BlockOrder(
                block_id=f"B{number}",
                route="SCHW-FIX",
                security_id=security,
                side=Side(side),
                quantity=D(quantity),
                ord_type=ord_type,
                limit=price,
                reference=D(reference),
                statement=(StatementLine(f"P{number}", 1, "A1", D(quantity)),),
            )
        )
    return made


def kinds(breaches: tuple[Breach, ...]) -> list[tuple[BreachKind, str | None]]:
    return [(b.kind, b.block_id) for b in breaches]


def test_check_run_when_every_order_is_within_its_limits_then_the_run_may_go() -> None:
    blocks = run("""
        VTI  buy   1000  limit 102.00  ref 100.00
        BND  sell   500  market        ref 72.45
    """)

    assert check_run(blocks, Limits()) == ()


def test_check_run_when_a_run_has_more_orders_than_allowed_then_it_is_named() -> None:
    blocks = run("""
        VTI  buy   10  limit 102.00  ref 100.00
        BND  buy   10  limit 73.89   ref 72.45
        VXUS buy   10  limit 61.20   ref 60.00
    """)

    [breach] = check_run(blocks, Limits(max_orders=2))
    assert (breach.kind, breach.block_id, breach.measured, breach.limit) == (
        BreachKind.ORDERS,
        None,
        3,
        2,
    )
    assert breach.explanation == "the run would send 3 orders; at most 2 may go"


def test_check_run_when_notional_passes_the_limit_then_it_counts_limits_and_references() -> None:
    # 1,000 at the $102.00 limit and 500 at the $50.00 reference of a market order:
    # $102,000 + $25,000 = $127,000 against $100,000.
    blocks = run("""
        VTI  buy   1000  limit 102.00  ref 100.00
        BND  sell   500  market        ref 50.00
    """)

    [breach] = check_run(blocks, Limits(max_notional=D("100000")))
    assert (breach.kind, breach.measured, breach.limit) == (
        BreachKind.NOTIONAL,
        D("127000.00"),
        D("100000"),
    )
    assert breach.explanation == "the run's orders come to $127,000.00; at most $100,000.00"


def test_check_run_when_a_limit_stands_past_the_collar_then_that_order_is_named() -> None:
    # 5% of $100.00 is $5.00: $105.00 and $95.00 are on the collar, $106.00 and $94.99
    # beyond it, whichever way they stand.
    blocks = run("""
        VTI  buy   10  limit 105.00  ref 100.00
        VTI  sell  10  limit 95.00   ref 100.00
        VTI  buy   10  limit 106.00  ref 100.00
        VTI  sell  10  limit 94.99   ref 100.00
        VTI  buy   10  limit 90.00   ref 100.00
        VTI  buy   10  market        ref 100.00
    """)

    breaches = check_run(blocks, Limits())
    assert kinds(breaches) == [
        (BreachKind.COLLAR, "B3"),
        (BreachKind.COLLAR, "B4"),
        (BreachKind.COLLAR, "B5"),
    ]
    assert breaches[0].measured == D("0.06")
    assert breaches[0].limit == D("0.05")
    assert breaches[0].explanation == (
        "buy VTI limit 106.00 is 6% from its reference 100.00; at most 5%"
    )


def test_check_run_when_everything_is_wrong_then_the_run_s_breaches_come_first() -> None:
    blocks = run("""
        VTI  buy   1000  limit 120.00  ref 100.00
        BND  buy   1000  limit 80.00   ref 80.00
    """)

    assert kinds(check_run(blocks, Limits(max_orders=1, max_notional=D("1000")))) == [
        (BreachKind.ORDERS, None),
        (BreachKind.NOTIONAL, None),
        (BreachKind.COLLAR, "B1"),
    ]


@pytest.mark.parametrize("reference", ["100.00", "33.333", "0.5123", "1.00", "1234.5678"])
@pytest.mark.parametrize("side", list(Side))
def test_check_run_when_limits_are_priced_at_the_same_collar_then_none_breaches(
    reference: str, side: Side
) -> None:
    collar = D("0.05")
    limit = limit_price(side, D(reference), collar)
    [block] = run(f"VTI  {side}  10  limit {limit}  ref {reference}")

    assert check_run([block], Limits(collar=collar)) == ()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_orders": -1}, "order limit"),
        ({"max_notional": D("-1")}, "notional limit"),
        ({"collar": D("1.5")}, "collar"),
    ],
)
def test_limits_when_they_make_no_sense_then_they_are_refused(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Limits(**changes)  # type: ignore[arg-type]


# --- child orders ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parent", "filled", "working", "child", "allowed"),
    [
        # 1,000 ordered, 300 filled, 200 in working children: 500 left.
        ("1000", "300", "200", "500", True),
        ("1000", "300", "200", "501", False),
        ("1000", "300", "200", "1", True),
        ("1000", "300", "200", "0", False),
        ("1000", "1000", "0", "1", False),
        # Over-filled (a late fill after a cancel): nothing is left to send.
        ("1000", "900", "200", "1", False),
    ],
)
def test_child_allowed_when_a_child_would_be_sent_then_only_within_what_is_left(
    parent: str, filled: str, working: str, child: str, allowed: bool
) -> None:
    assert child_allowed(D(parent), D(filled), D(working), D(child)) is allowed


def test_child_allowed_when_a_count_is_negative_then_it_is_refused() -> None:
    with pytest.raises(ValidationError):
        child_allowed(D("1000"), D("-1"), Decimal(0), D("10"))
