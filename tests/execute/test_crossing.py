"""Internal crossing: worked examples, the batch's trades written one a line.

A trade line reads ``P1#1  A1  H1  buy  300  VTI`` — proposal and sequence, account,
household, side, shares, security — then what sets it apart: ``loss`` (a sale at a
loss), ``no-consent`` (the account has not consented to cross trades), a registration
other than ``taxable`` (``401k``, ``traditional_ira`` …), ``fractional`` (the account
may hold fractions), ``lots=L1:60,L2:40`` (the lots a sale relieves, in order). Every
cross is at the reference: VTI closed at $220.10 on 13 June 2024.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from poise.domain.errors import ValidationError
from poise.domain.money import D, plain
from poise.domain.orders import (
    Cross,
    LotInstruction,
    OrdType,
    Reference,
    ReleasedTrade,
    Side,
    Skipped,
    SkipReason,
    split_lots,
)
from poise.execute.crossing import CrossPolicy, cross

AT = datetime(2024, 6, 13, 20, 0, tzinfo=UTC)
REFERENCES = {
    "VTI": Reference("VTI", D("220.10"), "close 2024-06-13", AT),
    "BND": Reference("BND", D("72.45"), "close 2024-06-13", AT),
}
POLICY = CrossPolicy()
REGISTRATIONS = {"taxable", "joint", "trust", "traditional_ira", "roth_ira", "401k", "roth_401k"}


def _lines(table: str) -> list[str]:
    return [" ".join(line.split()) for line in table.strip().splitlines() if line.strip()]


def released(table: str) -> list[ReleasedTrade]:
    """The batch's trades, one a line (see the module's text)."""
    trades = []
    for line in _lines(table):
        key, account, household, side, quantity, security, *flags = line.split()
        proposal, seq = key.split("#")
        lots: tuple[LotInstruction, ...] = ()
        registration = "taxable"
        for flag in flags:
            if flag.startswith("lots="):
                lots = tuple(
                    LotInstruction(lot, D(qty))
                    for lot, qty in (part.split(":") for part in flag[5:].split(","))
                )
            elif flag in REGISTRATIONS:
                registration = flag
            else:
                assert flag in {"loss", "no-consent", "fractional"}, line
        trades.append(
            ReleasedTrade(
                proposal_id=proposal,
                seq=int(seq),
                account_id=account,
                household_id=household,
                custodian="schwab",
                registration=registration,
                cross_consent="no-consent" not in flags,
                security_id=security,
                identity=security,
                side=Side(side),
                quantity=D(quantity),
                price=REFERENCES[security].price if security in REFERENCES else D("10"),
                loss="loss" in flags,
                lots=lots,
                whole="fractional" not in flags,
            )
        )
    return trades


def _words(*words: str, lots: tuple[LotInstruction, ...] = ()) -> str:
    named = ",".join(f"{lot.lot_id}:{plain(lot.quantity)}" for lot in lots)
    return " ".join([*words, named] if named else words)


def legs(crossed: Cross) -> list[str]:
    """``buy A1 P1#1 100`` — side, account, trade, shares, and a sale's lots."""
    return [
        _words(
            leg.side,
            leg.account_id,
            f"{leg.proposal_id}#{leg.seq}",
            plain(leg.quantity),
            lots=leg.lots,
        )
        for leg in crossed.legs
    ]


def market(remaining: tuple[ReleasedTrade, ...]) -> list[str]:
    """What goes to market: ``P1#1 A1 buy 150 VTI`` and a sale's lots."""
    return [
        _words(t.key_text, t.account_id, t.side, plain(t.quantity), t.security_id, lots=t.lots)
        for t in remaining
    ]


def table(text: str) -> list[str]:
    return _lines(text)


def reasons(skipped: tuple[Skipped, ...]) -> dict[str, SkipReason]:
    return {f"{s.proposal_id}#{s.seq}": s.reason for s in skipped}


def run(
    text: str, policy: CrossPolicy = POLICY, references: dict[str, Reference] = REFERENCES
) -> tuple[tuple[Cross, ...], tuple[ReleasedTrade, ...], tuple[Skipped, ...]]:
    return cross(released(text), references, policy, batch_id="R1")


# --- crossing in full and in part ----------------------------------------------------


def test_cross_when_two_accounts_trade_the_same_shares_then_all_cross_and_none_go_to_market() -> (
    None
):
    crosses, remaining, skipped = run("""
        P1#1  A1  H1  buy   100  VTI
        P2#1  B1  H2  sell  100  VTI  lots=L7:100
    """)

    [made] = crosses
    assert (made.security_id, made.quantity, made.price) == ("VTI", 100, D("220.10"))
    assert (made.source, made.at) == ("close 2024-06-13", AT)
    assert legs(made) == table("""
        buy   A1  P1#1  100
        sell  B1  P2#1  100  L7:100
    """)
    assert remaining == ()
    assert skipped == ()


def test_cross_when_one_buy_of_300_meets_sells_of_100_and_50_then_150_cross_and_150_go_out() -> (
    None
):
    crosses, remaining, skipped = run("""
        P1#1  A1  H1  buy   300  VTI
        P2#1  B1  H2  sell  100  VTI
        P3#1  C1  H3  sell   50  VTI
    """)

    [made] = crosses
    assert made.quantity == 150
    assert legs(made) == table("""
        buy   A1  P1#1  150
        sell  B1  P2#1  100
        sell  C1  P3#1   50
    """)
    assert market(remaining) == table("P1#1  A1  buy  150  VTI")
    assert skipped == ()


def test_cross_when_two_buyers_share_a_smaller_sale_then_each_gets_its_pro_rata_whole_shares() -> (
    None
):
    # 100 shares over buys of 200 and 100: 66.67 and 33.33 → 66 and 33, and the odd
    # share to the larger fraction cut off (A1's .67).
    crosses, remaining, _ = run("""
        P1#1  A1  H1  buy   200  VTI
        P1#2  B1  H2  buy   100  VTI
        P2#1  C1  H3  sell  100  VTI
    """)

    assert legs(crosses[0]) == table("""
        buy   A1  P1#1  67
        buy   B1  P1#2  33
        sell  C1  P2#1  100
    """)
    assert market(remaining) == table("""
        P1#1  A1  buy  133  VTI
        P1#2  B1  buy   67  VTI
    """)


def test_cross_when_buyers_tie_for_the_odd_share_then_the_first_account_by_id_gets_it() -> None:
    # Two shares over three buys of one: 2/3 each, so nobody's whole share is certain;
    # the two odd shares go to A1 and A2, first by account id; A3 goes to market.
    crosses, remaining, skipped = run("""
        P3#1  A3  H3  buy   1  VTI
        P1#1  A2  H2  buy   1  VTI
        P2#1  A1  H1  buy   1  VTI
        P4#1  S1  H4  sell  2  VTI
    """)

    assert legs(crosses[0]) == table("""
        buy   A1  P2#1  1
        buy   A2  P1#1  1
        sell  S1  P4#1  2
    """)
    assert market(remaining) == table("P3#1  A3  buy  1  VTI")
    assert reasons(skipped) == {"P3#1": SkipReason.ROUNDED_OUT}


def test_cross_when_a_sale_crosses_in_part_then_the_crossed_shares_relieve_its_first_lots() -> None:
    crosses, remaining, _ = run("""
        P1#1  A1  H1  buy    75  VTI
        P2#1  B1  H2  sell  100  VTI  lots=L1:60,L2:40
    """)

    assert legs(crosses[0]) == table("""
        buy   A1  P1#1  75
        sell  B1  P2#1  75  L1:60,L2:15
    """)
    assert market(remaining) == table("P2#1  B1  sell  25  VTI  L2:25")


def test_cross_when_each_security_has_both_sides_then_one_cross_each_in_security_order() -> None:
    crosses, remaining, _ = run("""
        P1#1  A1  H1  buy   10  VTI
        P1#2  A1  H1  sell  40  BND
        P2#1  B1  H2  sell  10  VTI
        P2#2  B1  H2  buy   40  BND
    """)

    assert [(c.security_id, c.quantity, c.price) for c in crosses] == [
        ("BND", 40, D("72.45")),
        ("VTI", 10, D("220.10")),
    ]
    assert remaining == ()


def test_cross_when_a_security_is_only_bought_then_nothing_crosses_and_nothing_is_skipped() -> None:
    crosses, remaining, skipped = run("""
        P1#1  A1  H1  buy  10  VTI
        P2#1  B1  H2  buy  20  VTI
        P3#1  C1  H3  sell 30  BND
    """)

    assert crosses == ()
    assert market(remaining) == table("""
        P1#1  A1  buy  10  VTI
        P2#1  B1  buy  20  VTI
        P3#1  C1  sell 30  BND
    """)
    assert skipped == ()


# --- who may cross --------------------------------------------------------------------


def test_cross_when_an_account_has_not_consented_then_it_never_crosses() -> None:
    crosses, remaining, skipped = run("""
        P1#1  A1  H1  buy   100  VTI  no-consent
        P2#1  B1  H2  sell  100  VTI
    """)

    assert crosses == ()
    assert len(remaining) == 2
    assert reasons(skipped) == {"P1#1": SkipReason.NO_CONSENT, "P2#1": SkipReason.NO_COUNTERPARTY}
    assert "has not consented" in skipped[0].detail


def test_cross_when_one_buyer_has_not_consented_then_the_sale_crosses_with_the_one_who_has() -> (
    None
):
    crosses, remaining, skipped = run("""
        P1#1  A1  H1  buy   100  VTI  no-consent
        P1#2  A2  H2  buy    60  VTI
        P2#1  B1  H3  sell  100  VTI
    """)

    assert legs(crosses[0]) == table("""
        buy   A2  P1#2  60
        sell  B1  P2#1  60
    """)
    assert market(remaining) == table("""
        P1#1  A1  buy  100  VTI
        P2#1  B1  sell  40  VTI
    """)
    assert reasons(skipped) == {"P1#1": SkipReason.NO_CONSENT}


def test_cross_when_an_account_is_a_401k_plan_then_erisa_keeps_it_out_by_default() -> None:
    trades = """
        P1#1  A1  H1  buy   100  VTI  401k
        P1#2  A2  H1  buy   100  VTI  roth_401k
        P2#1  B1  H2  sell  200  VTI
    """
    crosses, _, skipped = run(trades)

    assert crosses == ()
    assert reasons(skipped) == {
        "P1#1": SkipReason.EXCLUDED_REGISTRATION,
        "P1#2": SkipReason.EXCLUDED_REGISTRATION,
        "P2#1": SkipReason.NO_COUNTERPARTY,
    }
    # A firm whose plans meet the §408(b)(19) conditions may cross them.
    crosses, _, _ = run(trades, CrossPolicy(excluded_registrations=frozenset()))
    assert crosses[0].quantity == 200


def test_cross_when_the_policy_excludes_iras_then_an_ira_is_left_out() -> None:
    policy = CrossPolicy(excluded_registrations=frozenset({"401k", "traditional_ira"}))
    _, _, skipped = run(
        """
        P1#1  A1  H1  buy   100  VTI  traditional_ira
        P2#1  B1  H2  sell  100  VTI
        """,
        policy,
    )

    assert reasons(skipped)["P1#1"] is SkipReason.EXCLUDED_REGISTRATION


def test_cross_when_crossing_is_off_then_every_trade_goes_to_market_as_it_came() -> None:
    trades = """
        P1#1  A1  H1  buy   100  VTI
        P2#1  B1  H2  sell  100  VTI
        P3#1  C1  H3  buy    10  BND
    """
    crosses, remaining, skipped = run(trades, CrossPolicy(enabled=False))

    assert crosses == ()
    assert list(remaining) == sorted(released(trades), key=lambda t: t.key)
    # BND is only bought: it had nothing to cross with, crossing on or off.
    assert reasons(skipped) == {"P1#1": SkipReason.CROSSING_OFF, "P2#1": SkipReason.CROSSING_OFF}


def test_cross_when_a_security_has_no_reference_price_then_it_does_not_cross() -> None:
    crosses, remaining, skipped = run(
        """
        P1#1  A1  H1  buy   100  VTI
        P2#1  B1  H2  sell  100  VTI
        """,
        references={},
    )

    assert crosses == ()
    assert len(remaining) == 2
    assert set(reasons(skipped).values()) == {SkipReason.NO_REFERENCE}


def test_cross_when_an_account_buys_and_sells_one_security_then_it_never_crosses_with_itself() -> (
    None
):
    crosses, remaining, skipped = run("""
        P1#1  A1  H1  buy   100  VTI
        P2#1  A1  H1  sell  100  VTI
        P3#1  B1  H2  sell   30  VTI
    """)

    assert crosses == ()
    assert len(remaining) == 3
    assert reasons(skipped) == {
        "P1#1": SkipReason.SAME_ACCOUNT,
        "P2#1": SkipReason.SAME_ACCOUNT,
        "P3#1": SkipReason.NO_COUNTERPARTY,
    }


# --- one household's loss sale --------------------------------------------------------


def test_cross_when_a_loss_seller_s_household_buys_the_security_then_the_loss_sale_goes_out() -> (
    None
):
    # H1 selling VTI at a loss in A1 and buying it in its IRA A2: crossed, the loss
    # would be sold to itself. The loss sale goes to market; A2 has no other seller.
    crosses, remaining, skipped = run("""
        P1#1  A1  H1  sell  100  VTI  loss
        P1#2  A2  H1  buy   100  VTI  traditional_ira
    """)

    assert crosses == ()
    assert len(remaining) == 2
    assert reasons(skipped) == {
        "P1#1": SkipReason.HOUSEHOLD_WASH,
        "P1#2": SkipReason.NO_COUNTERPARTY,
    }


def test_cross_when_a_loss_seller_meets_another_household_s_buyer_then_it_crosses() -> None:
    crosses, remaining, _ = run("""
        P1#1  A1  H1  sell  100  VTI  loss
        P2#1  B1  H2  buy   100  VTI
    """)

    assert legs(crosses[0]) == table("""
        buy   B1  P2#1  100
        sell  A1  P1#1  100
    """)
    assert remaining == ()


def test_cross_when_both_households_trade_then_the_loss_sale_alone_is_left_out() -> None:
    # H1 sells at a loss and buys; H2 sells at a gain; H3 buys. Without A1's sale the
    # buys of 40 and 100 share B1's 40: 11.43 and 28.57 → 11 and 29.
    crosses, remaining, skipped = run("""
        P1#1  A1  H1  sell  100  VTI  loss
        P1#2  A2  H1  buy    40  VTI
        P2#1  B1  H2  sell   40  VTI
        P3#1  C1  H3  buy   100  VTI
    """)

    assert legs(crosses[0]) == table("""
        buy   A2  P1#2  11
        buy   C1  P3#1  29
        sell  B1  P2#1  40
    """)
    assert market(remaining) == table("""
        P1#1  A1  sell  100  VTI
        P1#2  A2  buy    29  VTI
        P3#1  C1  buy    71  VTI
    """)
    assert reasons(skipped) == {"P1#1": SkipReason.HOUSEHOLD_WASH}


def test_cross_when_a_household_sells_at_a_gain_to_its_own_account_then_it_may_cross() -> None:
    crosses, remaining, _ = run("""
        P1#1  A1  H1  sell  100  VTI
        P1#2  A2  H1  buy   100  VTI
    """)

    assert crosses[0].quantity == 100
    assert remaining == ()


def test_cross_when_the_household_s_buyer_may_not_cross_then_its_loss_sale_still_may() -> None:
    # A2's purchase goes to market whatever happens here; it is not a leg of the cross.
    crosses, _, skipped = run("""
        P1#1  A1  H1  sell  100  VTI  loss
        P1#2  A2  H1  buy   100  VTI  no-consent
        P2#1  B1  H2  buy   100  VTI
    """)

    assert legs(crosses[0]) == table("""
        buy   B1  P2#1  100
        sell  A1  P1#1  100
    """)
    assert reasons(skipped) == {"P1#2": SkipReason.NO_CONSENT}


# --- fractions ------------------------------------------------------------------------


def test_cross_when_every_trade_may_hold_fractions_then_fractions_cross() -> None:
    crosses, remaining, _ = run("""
        P1#1  A1  H1  buy   2.5     VTI  fractional
        P2#1  B1  H2  sell  1.25    VTI  fractional
    """)

    assert crosses[0].quantity == D("1.25")
    assert market(remaining) == table("P1#1  A1  buy  1.25  VTI")


def test_cross_when_whole_shares_meet_a_fraction_then_only_whole_shares_cross() -> None:
    crosses, remaining, skipped = run("""
        P1#1  A1  H1  buy   10     VTI
        P2#1  B1  H2  sell  2.5    VTI  fractional
        P3#1  C1  H3  sell  0.4    VTI  fractional
    """)

    assert legs(crosses[0]) == table("""
        buy   A1  P1#1  2
        sell  B1  P2#1  2
    """)
    assert market(remaining) == table("""
        P1#1  A1  buy   8    VTI
        P2#1  B1  sell  0.5  VTI
        P3#1  C1  sell  0.4  VTI
    """)
    assert reasons(skipped) == {"P3#1": SkipReason.FRACTION}


# --- the same answer every time -------------------------------------------------------


def test_cross_when_the_trades_come_in_another_order_then_the_result_is_the_same() -> None:
    trades = released("""
        P1#1  A1  H1  buy   200  VTI
        P1#2  B1  H2  buy   100  VTI
        P2#1  C1  H3  sell  100  VTI  lots=L1:30,L2:70
        P2#2  C1  H3  sell   17  BND
        P3#1  D1  H4  buy    30  BND  no-consent
        P3#2  D2  H4  buy    30  BND
    """)
    first = cross(trades, REFERENCES, POLICY, batch_id="R1")
    for seed in range(5):
        shuffled = list(trades)
        random.Random(seed).shuffle(shuffled)
        assert cross(shuffled, REFERENCES, POLICY, batch_id="R1") == first


def test_cross_when_the_batch_differs_then_the_cross_id_differs() -> None:
    trades = released("""
        P1#1  A1  H1  buy   100  VTI
        P2#1  B1  H2  sell  100  VTI
    """)
    one = cross(trades, REFERENCES, POLICY, batch_id="R1")[0][0].cross_id
    again = cross(trades, REFERENCES, POLICY, batch_id="R1")[0][0].cross_id
    other = cross(trades, REFERENCES, POLICY, batch_id="R2")[0][0].cross_id

    assert one == again != other
    assert one.startswith("R1-X-VTI-")


def test_cross_when_a_trade_is_released_twice_then_it_is_refused() -> None:
    trades = released("""
        P1#1  A1  H1  buy   100  VTI
        P1#1  A1  H1  buy   100  VTI
    """)

    with pytest.raises(ValidationError, match="released twice"):
        cross(trades, REFERENCES, POLICY, batch_id="R1")


def test_released_trade_when_its_lots_do_not_hold_its_quantity_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="named lots hold 90"):
        released("P1#1  A1  H1  sell  100  VTI  lots=L1:60,L2:30")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("P1#1  A1  H1  buy   10.5  VTI", "whole shares"),
        ("P1#1  A1  H1  buy   0     VTI", "positive quantity"),
        ("P1#1  A1  H1  buy   0.0000001  VTI  fractional", "millionth"),
        ("P1#1  A1  H1  buy   10  VTI  loss", "realises no loss"),
        ("P1#1  A1  H1  buy   10  VTI  lots=L1:10", "relieves no lots"),
    ],
)
def test_released_trade_when_it_breaks_a_rule_of_its_type_then_it_is_refused(
    line: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        released(line)


def test_sides_and_order_types_when_sent_to_a_broker_then_they_carry_tags_54_and_40() -> None:
    assert (Side.BUY.fix, Side.SELL.fix) == ("1", "2")
    assert (OrdType.MARKET.fix, OrdType.LIMIT.fix) == ("1", "2")


def test_lots_when_unknown_then_split_gives_none_either_side() -> None:
    assert split_lots((), Decimal(5)) == ((), ())
