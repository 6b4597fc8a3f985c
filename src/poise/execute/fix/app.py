"""The application messages poise and its brokers exchange, as typed values.

Each is a frozen value checked when built, with ``to_fix()`` (a ``simplefix``
message without a header: the session writes that) and ``from_fix(message)``, which
raises ``FieldError`` naming the tag of a field that is missing or wrong. Quantities
and prices are ``Decimal``; times are aware UTC datetimes. Each message's fields are a
table (``FIELDS``): attribute, tag, how its text reads, whether it is required — the
message's page of the FIX 4.4 dictionary, as far as poise uses it.

Account(1) is the account of the route an order goes by (a block order goes out under
the firm's account): brokers see account numbers, never a client's name.

In FIX 4.4 a fill is ExecType(150)=F (Trade), with OrdStatus(39) 1 (partially filled)
or 2 (filled); ExecType 1 and 2 are gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar, Self

import simplefix

from poise.execute.fix.codec import (
    MsgType,
    Tag,
    field,
    fields_index,
    format_timestamp,
    parse_timestamp,
    tag_bytes,
)
from poise.execute.fix.errors import FieldError

__all__ = [
    "MESSAGE_TYPES",
    "ApplicationMessage",
    "BusinessMessageReject",
    "CxlRejResponseTo",
    "ExecType",
    "ExecutionReport",
    "NewOrderSingle",
    "OrdStatus",
    "OrdType",
    "OrderCancelReject",
    "OrderCancelReplaceRequest",
    "OrderCancelRequest",
    "OrderStatusRequest",
    "Side",
    "TimeInForce",
    "parse_application",
]


class Side(StrEnum):
    BUY = "1"
    SELL = "2"
    SELL_SHORT = "5"


class OrdType(StrEnum):
    MARKET = "1"
    LIMIT = "2"


class TimeInForce(StrEnum):
    DAY = "0"
    GOOD_TILL_CANCEL = "1"
    AT_THE_OPENING = "2"
    IMMEDIATE_OR_CANCEL = "3"
    FILL_OR_KILL = "4"
    AT_THE_CLOSE = "7"


class ExecType(StrEnum):
    """ExecType(150) in FIX 4.4: fills are TRADE."""

    NEW = "0"
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    REPLACED = "5"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"
    TRADE = "F"
    ORDER_STATUS = "I"


class OrdStatus(StrEnum):
    NEW = "0"
    PARTIALLY_FILLED = "1"
    FILLED = "2"
    DONE_FOR_DAY = "3"
    CANCELED = "4"
    PENDING_CANCEL = "6"
    REJECTED = "8"
    PENDING_NEW = "A"
    EXPIRED = "C"
    PENDING_REPLACE = "E"

    @property
    def is_done(self) -> bool:
        """No more fills can come (filled, cancelled, rejected, expired, done for day)."""
        return self in _DONE


_DONE = frozenset(
    {
        OrdStatus.FILLED,
        OrdStatus.CANCELED,
        OrdStatus.REJECTED,
        OrdStatus.EXPIRED,
        OrdStatus.DONE_FOR_DAY,
    }
)


class CxlRejResponseTo(StrEnum):
    CANCEL = "1"
    REPLACE = "2"


Reader = Callable[[str], object]


@dataclass(frozen=True, slots=True)
class Spec:
    """One field of a message: its attribute, its tag, how its text reads."""

    name: str
    tag: Tag
    read: Reader = str
    required: bool = True


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a number")
    return value


_TAG_DIGITS = {tag: str(int(tag)).encode("ascii") for tag in Tag}


def _write(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return format_timestamp(value)
    return str(value)


# Each message class's field tags as its messages hold them, made at its first read.
_KEYS: dict[type, tuple[bytes, ...]] = {}


class _Message:
    """What every application message shares: encoding and decoding by its table."""

    __slots__ = ()
    MSG_TYPE: ClassVar[str]
    FIELDS: ClassVar[tuple[Spec, ...]]

    def to_fix(self) -> Any:
        """A ``simplefix.FixMessage``: MsgType and the body, no session header."""
        message = simplefix.FixMessage()
        message.append_pair(Tag.MsgType, self.MSG_TYPE, header=True)
        message.pairs += [
            (_TAG_DIGITS[spec.tag], _write(value).encode("utf-8"))
            for spec in self.FIELDS
            if (value := getattr(self, spec.name)) is not None
        ]  # as append_pair keeps them: the tag's digits, the value's UTF-8
        return message

    @classmethod
    def from_fix(cls, message: Any) -> Self:
        """The message in ``message`` (a ``simplefix.FixMessage``); ``FieldError`` names
        the first field missing or wrong."""
        return cls(**cls._values(message))

    @classmethod
    def _values(cls, message: Any) -> dict[str, object]:
        msg_type = field(message, Tag.MsgType)
        if msg_type != cls.MSG_TYPE:
            raise FieldError(Tag.MsgType, f"{msg_type} is not {cls.MSG_TYPE} ({cls.__name__})")
        values: dict[str, object] = {}
        index = fields_index(message)
        keys = _KEYS.get(cls)
        if keys is None:
            keys = _KEYS.setdefault(cls, tuple(tag_bytes(spec.tag) for spec in cls.FIELDS))
        for spec, key in zip(cls.FIELDS, keys, strict=True):
            raw = index.get(key)
            if not raw:
                if spec.required:
                    raise FieldError(spec.tag, f"required in {cls.__name__}, missing")
                continue
            text = raw.decode("latin-1")
            try:
                values[spec.name] = spec.read(text)
            except ValueError as exc:
                raise FieldError(spec.tag, f"{text!r}: {exc}") from None
        return values


def _positive(tag: Tag, value: Decimal | None, what: str) -> None:
    if value is not None and value <= 0:
        raise FieldError(tag, f"{what} must be positive, not {value}")


def _not_negative(tag: Tag, value: Decimal | None, what: str) -> None:
    if value is not None and value < 0:
        raise FieldError(tag, f"{what} must not be negative, not {value}")


def _named(tag: Tag, value: str | None, what: str) -> None:
    if value is not None and not value.strip():
        raise FieldError(tag, f"{what} must not be blank")


def _priced(ord_type: OrdType, price: Decimal | None) -> None:
    if ord_type is OrdType.LIMIT and price is None:
        raise FieldError(Tag.Price, "required for a limit order")
    if ord_type is OrdType.MARKET and price is not None:
        raise FieldError(Tag.Price, "a market order has no price")
    _positive(Tag.Price, price, "Price")


@dataclass(frozen=True, slots=True)
class NewOrderSingle(_Message):
    """D: an order."""

    MSG_TYPE: ClassVar[str] = MsgType.NewOrderSingle
    FIELDS: ClassVar[tuple[Spec, ...]] = (
        Spec("cl_ord_id", Tag.ClOrdID),
        Spec("account", Tag.Account),
        Spec("symbol", Tag.Symbol),
        Spec("side", Tag.Side, Side),
        Spec("transact_time", Tag.TransactTime, parse_timestamp),
        Spec("order_qty", Tag.OrderQty, _decimal),
        Spec("ord_type", Tag.OrdType, OrdType),
        Spec("price", Tag.Price, _decimal, required=False),
        Spec("time_in_force", Tag.TimeInForce, TimeInForce, required=False),
    )

    cl_ord_id: str
    account: str
    symbol: str
    side: Side
    order_qty: Decimal
    transact_time: datetime
    ord_type: OrdType = OrdType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY

    def __post_init__(self) -> None:
        _named(Tag.ClOrdID, self.cl_ord_id, "ClOrdID")
        _named(Tag.Account, self.account, "Account")
        _named(Tag.Symbol, self.symbol, "Symbol")
        _positive(Tag.OrderQty, self.order_qty, "OrderQty")
        _priced(self.ord_type, self.price)


@dataclass(frozen=True, slots=True)
class OrderCancelRequest(_Message):
    """F: cancel what is left of the order ``orig_cl_ord_id``; ``cl_ord_id`` names the
    request (and the order, once it is done)."""

    MSG_TYPE: ClassVar[str] = MsgType.OrderCancelRequest
    FIELDS: ClassVar[tuple[Spec, ...]] = (
        Spec("orig_cl_ord_id", Tag.OrigClOrdID),
        Spec("cl_ord_id", Tag.ClOrdID),
        Spec("order_id", Tag.OrderID, required=False),
        Spec("account", Tag.Account, required=False),
        Spec("symbol", Tag.Symbol),
        Spec("side", Tag.Side, Side),
        Spec("transact_time", Tag.TransactTime, parse_timestamp),
        Spec("order_qty", Tag.OrderQty, _decimal),
    )

    orig_cl_ord_id: str
    cl_ord_id: str
    symbol: str
    side: Side
    order_qty: Decimal
    transact_time: datetime
    order_id: str | None = None
    account: str | None = None

    def __post_init__(self) -> None:
        _named(Tag.OrigClOrdID, self.orig_cl_ord_id, "OrigClOrdID")
        _named(Tag.ClOrdID, self.cl_ord_id, "ClOrdID")
        _positive(Tag.OrderQty, self.order_qty, "OrderQty")


@dataclass(frozen=True, slots=True)
class OrderCancelReplaceRequest(_Message):
    """G: the order ``orig_cl_ord_id`` with a new quantity, price or time in force,
    from now on named ``cl_ord_id``."""

    MSG_TYPE: ClassVar[str] = MsgType.OrderCancelReplaceRequest
    FIELDS: ClassVar[tuple[Spec, ...]] = (
        Spec("orig_cl_ord_id", Tag.OrigClOrdID),
        Spec("cl_ord_id", Tag.ClOrdID),
        Spec("order_id", Tag.OrderID, required=False),
        Spec("account", Tag.Account),
        Spec("symbol", Tag.Symbol),
        Spec("side", Tag.Side, Side),
        Spec("transact_time", Tag.TransactTime, parse_timestamp),
        Spec("order_qty", Tag.OrderQty, _decimal),
        Spec("ord_type", Tag.OrdType, OrdType),
        Spec("price", Tag.Price, _decimal, required=False),
        Spec("time_in_force", Tag.TimeInForce, TimeInForce, required=False),
    )

    orig_cl_ord_id: str
    cl_ord_id: str
    account: str
    symbol: str
    side: Side
    order_qty: Decimal
    transact_time: datetime
    ord_type: OrdType = OrdType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    order_id: str | None = None

    def __post_init__(self) -> None:
        _named(Tag.OrigClOrdID, self.orig_cl_ord_id, "OrigClOrdID")
        _named(Tag.ClOrdID, self.cl_ord_id, "ClOrdID")
        _named(Tag.Account, self.account, "Account")
        _positive(Tag.OrderQty, self.order_qty, "OrderQty")
        _priced(self.ord_type, self.price)


@dataclass(frozen=True, slots=True)
class OrderStatusRequest(_Message):
    """H: where the order ``cl_ord_id`` stands (answered by an ExecutionReport with
    ExecType I)."""

    MSG_TYPE: ClassVar[str] = MsgType.OrderStatusRequest
    FIELDS: ClassVar[tuple[Spec, ...]] = (
        Spec("cl_ord_id", Tag.ClOrdID),
        Spec("order_id", Tag.OrderID, required=False),
        Spec("symbol", Tag.Symbol),
        Spec("side", Tag.Side, Side),
    )

    cl_ord_id: str
    symbol: str
    side: Side
    order_id: str | None = None

    def __post_init__(self) -> None:
        _named(Tag.ClOrdID, self.cl_ord_id, "ClOrdID")


@dataclass(frozen=True, slots=True)
class ExecutionReport(_Message):
    """8: what happened to an order — accepted, filled (ExecType F with LastQty and
    LastPx), cancelled, replaced, rejected, or where it stands (ExecType I)."""

    MSG_TYPE: ClassVar[str] = MsgType.ExecutionReport
    FIELDS: ClassVar[tuple[Spec, ...]] = (
        Spec("order_id", Tag.OrderID),
        Spec("cl_ord_id", Tag.ClOrdID),
        Spec("orig_cl_ord_id", Tag.OrigClOrdID, required=False),
        Spec("exec_id", Tag.ExecID),
        Spec("exec_type", Tag.ExecType, ExecType),
        Spec("ord_status", Tag.OrdStatus, OrdStatus),
        Spec("ord_rej_reason", Tag.OrdRejReason, int, required=False),
        Spec("account", Tag.Account, required=False),
        Spec("symbol", Tag.Symbol),
        Spec("side", Tag.Side, Side),
        Spec("order_qty", Tag.OrderQty, _decimal, required=False),
        Spec("ord_type", Tag.OrdType, OrdType, required=False),
        Spec("price", Tag.Price, _decimal, required=False),
        Spec("last_qty", Tag.LastQty, _decimal, required=False),
        Spec("last_px", Tag.LastPx, _decimal, required=False),
        Spec("leaves_qty", Tag.LeavesQty, _decimal),
        Spec("cum_qty", Tag.CumQty, _decimal),
        Spec("avg_px", Tag.AvgPx, _decimal),
        Spec("transact_time", Tag.TransactTime, parse_timestamp, required=False),
        Spec("text", Tag.Text, required=False),
    )

    order_id: str
    exec_id: str
    exec_type: ExecType
    ord_status: OrdStatus
    cl_ord_id: str
    symbol: str
    side: Side
    leaves_qty: Decimal
    cum_qty: Decimal
    avg_px: Decimal
    orig_cl_ord_id: str | None = None
    account: str | None = None
    order_qty: Decimal | None = None
    ord_type: OrdType | None = None
    price: Decimal | None = None
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    transact_time: datetime | None = None
    ord_rej_reason: int | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        _named(Tag.OrderID, self.order_id, "OrderID")
        _named(Tag.ExecID, self.exec_id, "ExecID")
        _named(Tag.ClOrdID, self.cl_ord_id, "ClOrdID")
        _not_negative(Tag.LeavesQty, self.leaves_qty, "LeavesQty")
        _not_negative(Tag.CumQty, self.cum_qty, "CumQty")
        _not_negative(Tag.AvgPx, self.avg_px, "AvgPx")
        if self.exec_type is ExecType.TRADE:
            if self.last_qty is None:
                raise FieldError(Tag.LastQty, "required in a fill (ExecType F)")
            if self.last_px is None:
                raise FieldError(Tag.LastPx, "required in a fill (ExecType F)")
            if self.ord_status not in (OrdStatus.PARTIALLY_FILLED, OrdStatus.FILLED):
                raise FieldError(
                    Tag.OrdStatus, f"a fill leaves an order 1 or 2, not {self.ord_status}"
                )
        _positive(Tag.LastQty, self.last_qty, "LastQty")
        _positive(Tag.LastPx, self.last_px, "LastPx")

    @property
    def is_fill(self) -> bool:
        return self.exec_type is ExecType.TRADE


@dataclass(frozen=True, slots=True)
class OrderCancelReject(_Message):
    """9: a cancel (or cancel/replace) request refused; the order stands as it was."""

    MSG_TYPE: ClassVar[str] = MsgType.OrderCancelReject
    FIELDS: ClassVar[tuple[Spec, ...]] = (
        Spec("order_id", Tag.OrderID),
        Spec("cl_ord_id", Tag.ClOrdID),
        Spec("orig_cl_ord_id", Tag.OrigClOrdID),
        Spec("ord_status", Tag.OrdStatus, OrdStatus),
        Spec("response_to", Tag.CxlRejResponseTo, CxlRejResponseTo),
        Spec("cxl_rej_reason", Tag.CxlRejReason, int, required=False),
        Spec("text", Tag.Text, required=False),
    )

    order_id: str
    cl_ord_id: str
    orig_cl_ord_id: str
    ord_status: OrdStatus
    response_to: CxlRejResponseTo
    cxl_rej_reason: int | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class BusinessMessageReject(_Message):
    """j: an application message that cannot be handled at all (an unsupported type,
    a field missing that names nothing the answer could refer to)."""

    MSG_TYPE: ClassVar[str] = MsgType.BusinessMessageReject
    FIELDS: ClassVar[tuple[Spec, ...]] = (
        Spec("ref_seq_num", Tag.RefSeqNum, int, required=False),
        Spec("ref_msg_type", Tag.RefMsgType),
        Spec("business_reject_ref_id", Tag.BusinessRejectRefID, required=False),
        Spec("reason", Tag.BusinessRejectReason, int),
        Spec("text", Tag.Text, required=False),
    )

    ref_msg_type: str
    reason: int
    ref_seq_num: int | None = None
    business_reject_ref_id: str | None = None
    text: str | None = None


ApplicationMessage = (
    NewOrderSingle
    | OrderCancelRequest
    | OrderCancelReplaceRequest
    | OrderStatusRequest
    | ExecutionReport
    | OrderCancelReject
    | BusinessMessageReject
)

MESSAGE_TYPES: dict[str, type[ApplicationMessage]] = {
    kind.MSG_TYPE: kind
    for kind in (
        NewOrderSingle,
        OrderCancelRequest,
        OrderCancelReplaceRequest,
        OrderStatusRequest,
        ExecutionReport,
        OrderCancelReject,
        BusinessMessageReject,
    )
}


def parse_application(message: Any) -> ApplicationMessage:
    """The typed message in ``message``, by its MsgType; ``FieldError`` for a type poise
    does not know (Tag 35) or a field missing or wrong."""
    msg_type = field(message, Tag.MsgType)
    kind = MESSAGE_TYPES.get(msg_type or "")
    if kind is None:
        raise FieldError(Tag.MsgType, f"{msg_type} is not a message type poise handles")
    return kind.from_fix(message)
