"""The order messages on the wire: each written as FIX 4.4 has it (golden files, the
header as the session seals it), read back to the same value, and a bad one refused
with the tag that is wrong."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.execute.fix.broker_scene import CLIENT, NOW
from tests.execute.fix.wire import fields_of, frame

from poise.execute.fix.app import (
    BusinessMessageReject,
    CxlRejResponseTo,
    ExecType,
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderStatusRequest,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
    parse_application,
)
from poise.execute.fix.codec import decode, to_text
from poise.execute.fix.errors import FieldError
from poise.execute.fix.session import SessionMachine

GOLDEN = Path(__file__).resolve().parent / "golden"

LIMIT_BUY = NewOrderSingle(
    cl_ord_id="BLK-2026-12-07-0001",
    account="FIRM-BLOCK-1",
    symbol="AAPL",
    side=Side.BUY,
    order_qty=Decimal(1200),
    transact_time=NOW,
    ord_type=OrdType.LIMIT,
    price=Decimal("190.25"),
)
EXAMPLES: dict[str, Any] = {
    "new_order_single_market": NewOrderSingle(
        cl_ord_id="BLK-2026-12-07-0002",
        account="FIRM-BLOCK-1",
        symbol="VTI",
        side=Side.SELL,
        order_qty=Decimal("35.5"),
        transact_time=NOW,
    ),
    "new_order_single_limit": LIMIT_BUY,
    "order_cancel_request": OrderCancelRequest(
        orig_cl_ord_id="BLK-2026-12-07-0001",
        cl_ord_id="BLK-2026-12-07-0001-C1",
        symbol="AAPL",
        side=Side.BUY,
        order_qty=Decimal(1200),
        transact_time=NOW,
    ),
    "order_cancel_replace_request": OrderCancelReplaceRequest(
        orig_cl_ord_id="BLK-2026-12-07-0001",
        cl_ord_id="BLK-2026-12-07-0001-R1",
        account="FIRM-BLOCK-1",
        symbol="AAPL",
        side=Side.BUY,
        order_qty=Decimal(1000),
        transact_time=NOW,
        ord_type=OrdType.LIMIT,
        price=Decimal("191.00"),
        time_in_force=TimeInForce.GOOD_TILL_CANCEL,
    ),
    "order_status_request": OrderStatusRequest(
        cl_ord_id="BLK-2026-12-07-0001", symbol="AAPL", side=Side.BUY
    ),
    "execution_report_partial_fill": ExecutionReport(
        order_id="O-88",
        exec_id="E-301",
        exec_type=ExecType.TRADE,
        ord_status=OrdStatus.PARTIALLY_FILLED,
        cl_ord_id="BLK-2026-12-07-0001",
        symbol="AAPL",
        side=Side.BUY,
        order_qty=Decimal(1200),
        last_qty=Decimal(500),
        last_px=Decimal("190.20"),
        leaves_qty=Decimal(700),
        cum_qty=Decimal(500),
        avg_px=Decimal("190.2"),
        transact_time=NOW,
    ),
    "order_cancel_reject": OrderCancelReject(
        order_id="O-88",
        cl_ord_id="BLK-2026-12-07-0001-C1",
        orig_cl_ord_id="BLK-2026-12-07-0001",
        ord_status=OrdStatus.FILLED,
        response_to=CxlRejResponseTo.CANCEL,
        cxl_rej_reason=0,
        text="too late: the order is filled",
    ),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_message_when_sealed_then_it_is_the_golden_fix_message(name: str) -> None:
    machine = SessionMachine(CLIENT, next_sender=7, next_target=1, stored=lambda b, e: [])
    _, raw = machine.seal(EXAMPLES[name].to_fix(), NOW)
    text = to_text(raw) + "\n"
    path = GOLDEN / f"{name}.fix"
    if os.environ.get("POISE_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with POISE_UPDATE_GOLDEN=1 to make it"
    assert text == path.read_text(), f"{name}: differs from {path}"
    fields = [f"{tag}={value}" for tag, value in fields_of(raw) if tag not in (8, 9, 10)]
    assert raw == frame(*fields)  # BodyLength and CheckSum as counted by hand


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_message_when_read_back_then_it_is_the_same_value(name: str) -> None:
    machine = SessionMachine(CLIENT, next_sender=7, next_target=1, stored=lambda b, e: [])
    _, raw = machine.seal(EXAMPLES[name].to_fix(), NOW)

    assert parse_application(decode(raw)) == EXAMPLES[name]


def without(message: Any, tag: int) -> Any:
    fix = message.to_fix()
    fix.remove(tag)
    return fix


def with_value(message: Any, tag: int, value: str) -> Any:
    fix = message.to_fix()
    fix.remove(tag)
    fix.append_pair(tag, value)
    return fix


@pytest.mark.parametrize(
    ("fix", "tag", "says"),
    [
        (without(LIMIT_BUY, 38), 38, "OrderQty(38): required in NewOrderSingle, missing"),
        (without(LIMIT_BUY, 1), 1, "Account(1): required in NewOrderSingle, missing"),
        (with_value(LIMIT_BUY, 38, "lots"), 38, "OrderQty(38): 'lots': 'lots' is not a number"),
        (with_value(LIMIT_BUY, 38, "-5"), 38, "OrderQty(38): OrderQty must be positive, not -5"),
        (with_value(LIMIT_BUY, 54, "X"), 54, "Side(54): 'X': 'X' is not a valid Side"),
        (without(LIMIT_BUY, 44), 44, "Price(44): required for a limit order"),
        (with_value(LIMIT_BUY, 60, "yesterday"), 60, "TransactTime(60)"),
        (with_value(LIMIT_BUY, 35, "Z"), 35, "MsgType(35): Z is not a message type poise handles"),
    ],
)
def test_from_fix_when_a_field_is_missing_or_wrong_then_the_error_names_its_tag(
    fix: Any, tag: int, says: str
) -> None:
    with pytest.raises(FieldError) as raised:
        parse_application(fix)

    assert raised.value.tag == tag
    assert str(raised.value).startswith(says)


def test_execution_report_when_a_fill_has_no_last_price_then_tag_31_is_named() -> None:
    with pytest.raises(FieldError, match=r"LastPx\(31\): required in a fill"):
        ExecutionReport(
            order_id="O-1",
            exec_id="E-1",
            exec_type=ExecType.TRADE,
            ord_status=OrdStatus.FILLED,
            cl_ord_id="B-1",
            symbol="AAPL",
            side=Side.BUY,
            last_qty=Decimal(1),
            leaves_qty=Decimal(0),
            cum_qty=Decimal(1),
            avg_px=Decimal(1),
        )


def test_market_order_when_given_a_price_then_refused() -> None:
    with pytest.raises(FieldError, match=r"Price\(44\): a market order has no price"):
        NewOrderSingle(
            cl_ord_id="B-1",
            account="F",
            symbol="AAPL",
            side=Side.BUY,
            order_qty=Decimal(1),
            transact_time=NOW,
            price=Decimal(10),
        )


def test_business_message_reject_when_read_back_then_the_same() -> None:
    reject = BusinessMessageReject(ref_msg_type="D", reason=3, ref_seq_num=4, text="no")

    assert BusinessMessageReject.from_fix(reject.to_fix()) == reject
