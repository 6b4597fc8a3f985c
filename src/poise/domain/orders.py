"""Orders: what execution plans from released trades, and what comes back.

A released proposal's trades (:class:`ReleasedTrade`) are crossed internally where
they can be (a :class:`Cross` of one :class:`Leg` a trade, at an independent
:class:`Reference` price) and the rest become block orders (:class:`BlockOrder`),
each with its written allocation statement (one :class:`StatementLine` an account)
fixed before it is sent. A broker's fills (:class:`Fill`) are shared back to the
accounts, one :class:`Allocation` each.
:class:`Skipped` says why a trade that looked as if it could cross did not, or why a
trade could not go into a block.

Quantities are whole shares, or fractions of a share to six decimal places where the
account may hold fractions; sells name the lots they relieve, in order
(:class:`LotInstruction`), and :func:`split_lots` keeps those names consistent when a
trade is divided. Pure value types, validated when built.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from poise.domain.accounts import Registration
from poise.domain.errors import ValidationError
from poise.domain.money import ZERO, D

__all__ = [
    "MICRO_SHARE",
    "Allocation",
    "BlockOrder",
    "Cross",
    "Fill",
    "Leg",
    "LotInstruction",
    "OrdType",
    "Reference",
    "ReleasedTrade",
    "Side",
    "SkipReason",
    "Skipped",
    "StatementLine",
    "is_whole",
    "order_id",
    "split_lots",
]

# The smallest fraction of a share poise trades where an account may hold fractions.
MICRO_SHARE = D("0.000001")


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def fix(self) -> str:
        """FIX tag 54 (Side)."""
        return _SIDE_FIX[self]

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


_SIDE_FIX = {Side.BUY: "1", Side.SELL: "2"}


class OrdType(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"

    @property
    def fix(self) -> str:
        """FIX tag 40 (OrdType)."""
        return _ORD_TYPE_FIX[self]


_ORD_TYPE_FIX = {OrdType.MARKET: "1", OrdType.LIMIT: "2"}


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def order_id(*parts: str) -> str:
    """A deterministic id made of ``parts``: them joined by ``-`` (any run of characters
    other than letters, digits, ``.``, ``_`` and ``-`` made one ``_``; at most 48 long),
    then 10 hex digits of their SHA-256 — so different parts never share an id however
    they read once tidied.

    >>> order_id("run 7", "VTI", "buy", "SCHW")
    'run_7-VTI-buy-SCHW-905faf9818'
    """
    readable = _UNSAFE.sub("_", "-".join(parts))[:48]  # "-" is safe: runs stay apart
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:10]
    return f"{readable}-{digest}"


def is_whole(quantity: Decimal) -> bool:
    """A whole number of shares."""
    return quantity == quantity.to_integral_value()


def _check_quantity(quantity: Decimal, what: str, *, whole: bool = False) -> None:
    if quantity <= ZERO:
        raise ValidationError(f"{what} needs a positive quantity, got {quantity}")
    if whole and not is_whole(quantity):
        raise ValidationError(f"{what} is of whole shares, got {quantity}")
    if not is_whole(quantity / MICRO_SHARE):
        raise ValidationError(f"{what}: {quantity} is finer than a millionth of a share")


def _check_aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValidationError(f"{what} needs a timezone-aware time, got {at.isoformat()}")


def _total(quantities: Sequence[Decimal]) -> Decimal:
    return sum(quantities, ZERO)


@dataclass(frozen=True, slots=True)
class LotInstruction:
    """Shares of one lot a sale relieves (specific-lot identification to the custodian)."""

    lot_id: str
    quantity: Decimal

    def __post_init__(self) -> None:
        if not self.lot_id:
            raise ValidationError("a lot instruction names its lot")
        _check_quantity(self.quantity, f"lot instruction {self.lot_id}")


def _check_lots(lots: Sequence[LotInstruction], side: Side, quantity: Decimal, what: str) -> None:
    if not lots:
        return
    if side is Side.BUY:
        raise ValidationError(f"{what}: a buy relieves no lots")
    if len({lot.lot_id for lot in lots}) != len(lots):
        raise ValidationError(f"{what}: a lot is named twice")
    named = _total([lot.quantity for lot in lots])
    if named != quantity:
        raise ValidationError(f"{what}: the named lots hold {named} shares, not {quantity}")


def split_lots(
    lots: Sequence[LotInstruction], quantity: Decimal
) -> tuple[tuple[LotInstruction, ...], tuple[LotInstruction, ...]]:
    """The first ``quantity`` shares of the named ``lots``, in their order, and the rest.

    >>> lots = (LotInstruction("L1", D("60")), LotInstruction("L2", D("40")))
    >>> first, rest = split_lots(lots, D("75"))
    >>> [(lot.lot_id, str(lot.quantity)) for lot in first + rest]
    [('L1', '60'), ('L2', '15'), ('L2', '25')]

    No lots named (the custodian's default relief) splits into nothing and nothing.
    """
    if not lots:
        return (), ()
    if quantity < ZERO or quantity > _total([lot.quantity for lot in lots]):
        raise ValidationError(f"cannot take {quantity} shares from lots that hold fewer")
    taken: list[LotInstruction] = []
    rest: list[LotInstruction] = []
    left = quantity
    for lot in lots:
        take = min(left, lot.quantity)
        left -= take
        if take > ZERO:
            taken.append(LotInstruction(lot.lot_id, take))
        if lot.quantity > take:
            rest.append(LotInstruction(lot.lot_id, lot.quantity - take))
    return tuple(taken), tuple(rest)


@dataclass(frozen=True, slots=True)
class ReleasedTrade:
    """One account's trade in a released proposal, as execution receives it.

    ``(proposal_id, seq)`` names it. ``custodian`` routes it; ``registration`` and
    ``cross_consent`` decide whether it may be crossed; ``identity`` is the security's
    wash-sale identity; ``loss`` marks a sale that realises a loss on any of its lots.
    ``price`` is the price it was proposed at. A sale's ``lots``, when named, are the
    lots it relieves in order and hold exactly its quantity.
    """

    proposal_id: str
    seq: int
    account_id: str
    household_id: str
    custodian: str
    registration: str
    cross_consent: bool
    security_id: str
    identity: str
    side: Side
    quantity: Decimal
    price: Decimal
    loss: bool = False
    lots: tuple[LotInstruction, ...] = ()
    whole: bool = True

    def __post_init__(self) -> None:
        what = f"trade {self.key_text}"
        _check_quantity(self.quantity, what, whole=self.whole)
        if self.price < ZERO:
            raise ValidationError(f"{what}: a price cannot be negative, got {self.price}")
        try:
            Registration(self.registration)
        except ValueError:
            raise ValidationError(f"{what}: no such registration {self.registration!r}") from None
        if self.loss and self.side is Side.BUY:
            raise ValidationError(f"{what}: a buy realises no loss")
        _check_lots(self.lots, self.side, self.quantity, what)

    @property
    def key(self) -> tuple[str, int]:
        return (self.proposal_id, self.seq)

    @property
    def key_text(self) -> str:
        return f"{self.proposal_id}#{self.seq}"


@dataclass(frozen=True, slots=True)
class Reference:
    """An independent price for a security — ``source`` says what it is ("close
    2022-12-28", "mid") and ``at`` when it held."""

    security_id: str
    price: Decimal
    source: str
    at: datetime

    def __post_init__(self) -> None:
        if self.price <= ZERO:
            raise ValidationError(f"a reference price of {self.security_id} must be positive")
        _check_aware(self.at, f"the reference price of {self.security_id}")


@dataclass(frozen=True, slots=True)
class Leg:
    """One trade's part in a cross: the shares of it that cross, and for a sale the
    lots those shares relieve."""

    proposal_id: str
    seq: int
    account_id: str
    side: Side
    quantity: Decimal
    lots: tuple[LotInstruction, ...] = ()

    def __post_init__(self) -> None:
        what = f"cross leg {self.proposal_id}#{self.seq}"
        _check_quantity(self.quantity, what)
        _check_lots(self.lots, self.side, self.quantity, what)


@dataclass(frozen=True, slots=True)
class Cross:
    """Opposite trades of one security matched between the firm's accounts at the
    reference price, with no fee: the buy legs and the sell legs each add up to
    ``quantity``, and no account is on both sides."""

    cross_id: str
    security_id: str
    quantity: Decimal
    price: Decimal
    source: str
    at: datetime
    legs: tuple[Leg, ...]

    def __post_init__(self) -> None:
        what = f"cross {self.cross_id}"
        _check_quantity(self.quantity, what)
        if self.price <= ZERO:
            raise ValidationError(f"{what}: a cross needs a positive price")
        _check_aware(self.at, what)
        for side in Side:
            legs = [leg.quantity for leg in self.legs if leg.side is side]
            if _total(legs) != self.quantity:
                raise ValidationError(
                    f"{what}: the {side} legs add up to {_total(legs)}, not {self.quantity}"
                )
        buyers = {leg.account_id for leg in self.legs if leg.side is Side.BUY}
        sellers = {leg.account_id for leg in self.legs if leg.side is Side.SELL}
        if buyers & sellers:
            raise ValidationError(f"{what}: {sorted(buyers & sellers)} on both sides")
        if len({(leg.proposal_id, leg.seq) for leg in self.legs}) != len(self.legs):
            raise ValidationError(f"{what}: a trade has two legs")

    def side(self, side: Side) -> tuple[Leg, ...]:
        return tuple(leg for leg in self.legs if leg.side is side)


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One account's share of a block, written down before the block is sent."""

    proposal_id: str
    seq: int
    account_id: str
    quantity: Decimal
    lots: tuple[LotInstruction, ...] = ()

    def __post_init__(self) -> None:
        _check_quantity(self.quantity, f"statement line {self.proposal_id}#{self.seq}")

    @property
    def key(self) -> tuple[str, str, int]:
        """The order lines are written in, and the tie-break of every odd share."""
        return (self.account_id, self.proposal_id, self.seq)


@dataclass(frozen=True, slots=True)
class BlockOrder:
    """Many accounts' trades of one security, one side and one route, sent as one
    order. ``statement`` is the written allocation statement: which account gets how
    many of the block's shares; its lines add up to ``quantity``. ``limit`` is None
    for a market order; ``reference`` is the price the limit's collar stands around.
    A block is of whole shares (:attr:`whole`) or of fractions, never both: fractional
    quantities are blocked apart from the whole shares of their security, side and
    route."""

    block_id: str
    route: str
    security_id: str
    side: Side
    quantity: Decimal
    ord_type: OrdType
    limit: Decimal | None
    reference: Decimal
    statement: tuple[StatementLine, ...]

    def __post_init__(self) -> None:
        what = f"block {self.block_id}"
        _check_quantity(self.quantity, what)
        if (self.limit is None) != (self.ord_type is OrdType.MARKET):
            raise ValidationError(f"{what}: a limit order has a limit, a market order none")
        if self.limit is not None and self.limit <= ZERO:
            raise ValidationError(f"{what}: a limit must be positive, got {self.limit}")
        if self.reference <= ZERO:
            raise ValidationError(f"{what}: a reference price must be positive")
        if not self.statement:
            raise ValidationError(f"{what}: a block has an allocation statement")
        written = _total([line.quantity for line in self.statement])
        if written != self.quantity:
            raise ValidationError(
                f"{what}: its statement has {written} shares, not {self.quantity}"
            )
        if len({(line.proposal_id, line.seq) for line in self.statement}) != len(self.statement):
            raise ValidationError(f"{what}: a trade has two statement lines")
        for line in self.statement:
            _check_lots(line.lots, self.side, line.quantity, f"{what} line {line.key}")

    @property
    def whole(self) -> bool:
        """A block of whole shares: every line is a whole number of shares."""
        return all(is_whole(line.quantity) for line in self.statement)

    @property
    def notional(self) -> Decimal:
        """What the block could cost or raise: its quantity at its limit, or at the
        reference price for a market order."""
        return self.quantity * (self.reference if self.limit is None else self.limit)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of a block, as the broker reports it. ``security_id`` and
    ``side``, when given, are checked against the block's."""

    exec_id: str
    quantity: Decimal
    price: Decimal
    commission: Decimal = ZERO
    security_id: str = ""
    side: Side | None = None

    def __post_init__(self) -> None:
        what = f"fill {self.exec_id}"
        if not self.exec_id:
            raise ValidationError("a fill names its execution")
        _check_quantity(self.quantity, what)
        if self.price <= ZERO:
            raise ValidationError(f"{what}: a fill price must be positive, got {self.price}")
        if self.commission < ZERO:
            raise ValidationError(f"{what}: a commission cannot be negative")


@dataclass(frozen=True, slots=True)
class Allocation:
    """One account's share of a block's fills. ``price`` is the block's average price
    (to six decimal places); ``gross`` is the cash before costs, ``commission`` its
    share of the costs and ``net`` what it pays (a buy: gross + commission) or
    receives (a sale: gross − commission), all to the cent."""

    block_id: str
    proposal_id: str
    seq: int
    account_id: str
    side: Side
    quantity: Decimal
    price: Decimal
    gross: Decimal
    commission: Decimal
    net: Decimal
    lots: tuple[LotInstruction, ...] = ()


class SkipReason(enum.StrEnum):
    """Why a trade was not crossed, or not put in a block."""

    CROSSING_OFF = "crossing_off"  # the firm does not cross
    EXCLUDED_REGISTRATION = "excluded_registration"  # an ERISA plan, by default
    NO_CONSENT = "no_consent"  # the account has not consented to cross trades
    NO_REFERENCE = "no_reference"  # no independent price to cross or collar at
    SAME_ACCOUNT = "same_account"  # the account buys and sells the security
    HOUSEHOLD_WASH = "household_wash"  # a loss sale its own household would buy back
    FRACTION = "fraction"  # only a fraction of a share, in a cross of whole shares
    NO_COUNTERPARTY = "no_counterparty"  # no opposite trade could cross with it
    ROUNDED_OUT = "rounded_out"  # its pro-rata share of the cross rounded to nothing


@dataclass(frozen=True, slots=True)
class Skipped:
    """A trade left out of a cross or a block, and why (``detail``: in words)."""

    proposal_id: str
    seq: int
    reason: SkipReason
    detail: str = ""
