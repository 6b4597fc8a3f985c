"""Block orders: the trades left for market, aggregated into one order per security,
side and route, each with its allocation statement written before it is sent.

A trade goes to the route its custodian maps to (``routes``; a custodian not in the
map is its own route). The trades of one security, side and route become one
:class:`~poise.domain.orders.BlockOrder` whose **statement** lists each trade's
shares, by ``(account_id, proposal_id, seq)`` — the order every odd share is
decided in later. Fractional quantities go in a block of their own beside the whole
shares: most venues take only whole shares, and a fractional order goes to a broker's
fractional desk. (A block knows which it is from its lines:
:attr:`~poise.domain.orders.BlockOrder.whole`.)

Limit prices
    A limit order is priced at the reference × (1 + collar) for a buy and
    × (1 − collar) for a sale, rounded **towards the reference** to the tick: a buy's
    limit down, a sale's up. So the limit never stands further from the reference than
    the collar allows; at worst it is one tick nearer. The tick is a cent, or $0.0001
    for a reference under $1.00 (Regulation NMS Rule 612).

Market orders
    A market order carries no limit, but still its reference price: the run's notional
    limits are measured with it (:mod:`poise.execute.safety`) and its execution is
    judged against it. A trade with no reference price is therefore left out of a
    block, market or limit, and named in the skipped trades.

Pure; the same trades in any order make the same blocks.
"""

from __future__ import annotations

import decimal
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.money import CENT, ZERO, D
from poise.domain.orders import (
    BlockOrder,
    OrdType,
    Reference,
    ReleasedTrade,
    Side,
    Skipped,
    SkipReason,
    StatementLine,
    is_whole,
    order_id,
)

__all__ = ["BlockPolicy", "Skipped", "blocks", "limit_price", "tick"]

SUB_PENNY = D("0.0001")
DEFAULT_COLLAR = D("0.02")  # 2% either side of the reference


@dataclass(frozen=True, slots=True)
class BlockPolicy:
    """How blocks are priced: limit orders at ``collar`` (a fraction: 0.02 is 2%) from
    the reference price, or market orders."""

    ord_type: OrdType = OrdType.LIMIT
    collar: Decimal = DEFAULT_COLLAR

    def __post_init__(self) -> None:
        if not ZERO <= self.collar < 1:
            raise ValidationError(f"a collar lies between 0 and 1, got {self.collar}")


def tick(reference: Decimal) -> Decimal:
    """The price increment a limit is quoted in: a cent, or $0.0001 under $1.00."""
    return CENT if reference >= 1 else SUB_PENNY


def limit_price(side: Side, reference: Decimal, collar: Decimal) -> Decimal:
    """The limit ``collar`` from ``reference``, rounded towards it to the tick.

    >>> limit_price(Side.BUY, D("33.333"), D("0.02"))  # 33.99966
    Decimal('33.99')
    >>> limit_price(Side.SELL, D("33.333"), D("0.02"))  # 32.66634
    Decimal('32.67')
    """
    step = tick(reference)
    if side is Side.BUY:
        limit = (reference * (1 + collar)).quantize(step, rounding=decimal.ROUND_FLOOR)
    else:
        limit = (reference * (1 - collar)).quantize(step, rounding=decimal.ROUND_CEILING)
    if limit <= ZERO:
        raise ValidationError(f"a reference of {reference} leaves no positive limit")
    return limit


BlockKey = tuple[str, Side, str, bool]  # security, side, route, whole shares


def _block(
    key: BlockKey,
    trades: Sequence[ReleasedTrade],
    reference: Reference,
    policy: BlockPolicy,
    batch_id: str,
) -> BlockOrder:
    security, side, route, whole = key
    lines = tuple(
        StatementLine(t.proposal_id, t.seq, t.account_id, t.quantity, t.lots)
        for t in sorted(trades, key=lambda t: (t.account_id, t.proposal_id, t.seq))
    )
    parts = (batch_id, security, str(side), route) + (() if whole else ("fractional",))
    limited = policy.ord_type is OrdType.LIMIT
    return BlockOrder(
        block_id=order_id(*parts),
        route=route,
        security_id=security,
        side=side,
        quantity=sum((line.quantity for line in lines), ZERO),
        ord_type=policy.ord_type,
        limit=limit_price(side, reference.price, policy.collar) if limited else None,
        reference=reference.price,
        statement=lines,
    )


def blocks(
    trades: Sequence[ReleasedTrade],
    references: Mapping[str, Reference],
    routes: Mapping[str, str],
    policy: BlockPolicy,
    *,
    batch_id: str,
) -> tuple[tuple[BlockOrder, ...], tuple[Skipped, ...]]:
    """Aggregate ``trades`` into block orders: one per security, side, route (and
    whole or fractional shares), by security, side, route; and the trades left out for
    want of a reference price, by ``(proposal_id, seq)``."""
    seen: set[tuple[str, int]] = set()
    grouped: dict[BlockKey, list[ReleasedTrade]] = defaultdict(list)
    skipped: list[Skipped] = []
    for trade in trades:
        if trade.key in seen:
            raise ValidationError(f"trade {trade.key_text} is released twice")
        seen.add(trade.key)
        reference = references.get(trade.security_id)
        if reference is None:
            skipped.append(
                Skipped(
                    trade.proposal_id,
                    trade.seq,
                    SkipReason.NO_REFERENCE,
                    f"no reference price for {trade.security_id}: no limit and no notional",
                )
            )
            continue
        if reference.security_id != trade.security_id:
            raise ValidationError(
                f"the reference for {trade.security_id} is a price of {reference.security_id}"
            )
        route = routes.get(trade.custodian, trade.custodian)
        grouped[(trade.security_id, trade.side, route, is_whole(trade.quantity))].append(trade)

    made = tuple(
        _block(key, grouped[key], references[key[0]], policy, batch_id)
        for key in sorted(grouped, key=lambda k: (k[0], k[1], k[2], not k[3]))
    )
    return made, tuple(sorted(skipped, key=lambda s: (s.proposal_id, s.seq)))
