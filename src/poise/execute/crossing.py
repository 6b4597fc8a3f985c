"""Internal crossing: opposite trades of one security between the firm's own accounts,
matched before anything goes to market.

A cross moves shares from the accounts selling a security to the accounts buying it
at an **independent reference price** (the last close, or the mid of the market) and
**with no fee**: neither side pays a spread or a commission, which is the point of
crossing, and neither is favoured, which is the duty that comes with it.

Who may cross
    Only accounts that have consented to cross trades (``cross_consent``: the firm's
    written disclosure and consent, in the spirit of Advisers Act Rule 206(3)-2), and
    whose registration is not excluded by the :class:`CrossPolicy`. By default the
    ERISA plans — ``401k`` and ``roth_401k`` — are excluded: a cross trade between a
    plan and another client account of the same fiduciary is a prohibited transaction
    under ERISA §406(a)(1)(A) and §406(b)(2) unless every condition of the §408(b)(19)
    exemption is met (a plan of at least $100 million, a written cross-trading policy,
    the plan fiduciary's authorisation), which a rebalancing run cannot check.

One household's loss sale
    A sale with ``loss`` is never in the same cross as a buy of the same security by an
    account of its own household. The legs of a cross are a pool — every buyer takes
    its shares from all the sellers together — so such a cross would be the household
    selling at a loss to itself: a wash sale (26 U.S.C. §1091; Rev. Rul. 2008-5 where
    the buyer is an IRA), and for a spouse or a family trust a sale to a related person
    (§267). Such a **loss sale is left out of the cross** of that security and goes to
    market, where the buyer is no relation; the household's buy still crosses with the
    other households' sellers. What this forgoes is the crossing of the loss sale: it
    pays the market's spread and commission, and if no other seller is left, its
    household's buyer goes to market too. A purchase of the same identity that is not
    a leg of the cross (another security of the identity, or an account that may not
    cross) washes the loss whether or not the sale crosses; keeping that from
    happening is the rebalancer's work, not this module's.

How much crosses
    All the eligible buys of a security meet all its eligible sells in one cross. The
    smaller side crosses in full; the larger side crosses pro rata to its trades'
    quantities, by :func:`poise.execute.allocation.largest_remainder` — whole shares,
    the odd shares to the largest fractions cut off, ties to the trade first by
    ``(account_id, proposal_id, seq)``. A cross is of whole shares unless every trade
    in it may hold fractions (then to a millionth of a share); in a cross of whole
    shares a fractional trade offers only its whole shares. What a trade does not cross
    goes to market as the same trade with a smaller quantity; a sale's crossed shares
    relieve the first of its named lots, the shares left for market the rest.

No trade crosses with itself, and no account with itself: an account that both buys
and sells a security in one batch crosses neither. The result depends only on the set
of trades, not their order. Pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from poise.domain.errors import ValidationError
from poise.domain.orders import (
    MICRO_SHARE,
    Cross,
    Leg,
    Reference,
    ReleasedTrade,
    Side,
    Skipped,
    SkipReason,
    order_id,
    split_lots,
)
from poise.execute.allocation import shares_of

__all__ = ["TRADE_CHECKS", "CrossPolicy", "Skipped", "cross"]


@dataclass(frozen=True, slots=True)
class CrossPolicy:
    """Whether the firm crosses at all, and which registrations never do (ERISA plans,
    by default: see the module's text)."""

    enabled: bool = True
    excluded_registrations: frozenset[str] = frozenset({"401k", "roth_401k"})


def _sort_key(trade: ReleasedTrade) -> tuple[str, str, int]:
    return (trade.account_id, trade.proposal_id, trade.seq)


# A trade's own reasons not to cross, in the order they are told: the first that
# holds is the one recorded.
TradeCheck = Callable[[ReleasedTrade, CrossPolicy], str | None]


def _crossing_off(trade: ReleasedTrade, policy: CrossPolicy) -> str | None:
    return None if policy.enabled else "the firm's cross policy is off"


def _excluded(trade: ReleasedTrade, policy: CrossPolicy) -> str | None:
    if trade.registration in policy.excluded_registrations:
        return f"account {trade.account_id} is a {trade.registration} account, which never crosses"
    return None


def _no_consent(trade: ReleasedTrade, policy: CrossPolicy) -> str | None:
    if trade.cross_consent:
        return None
    return f"account {trade.account_id} has not consented to cross trades"


TRADE_CHECKS: Mapping[SkipReason, TradeCheck] = {
    SkipReason.CROSSING_OFF: _crossing_off,
    SkipReason.EXCLUDED_REGISTRATION: _excluded,
    SkipReason.NO_CONSENT: _no_consent,
}


def _under(check: TradeCheck, policy: CrossPolicy) -> Callable[[ReleasedTrade], str | None]:
    return lambda trade: check(trade, policy)


def _check_unique(trades: Sequence[ReleasedTrade]) -> None:
    seen: set[tuple[str, int]] = set()
    for trade in trades:
        if trade.key in seen:
            raise ValidationError(f"trade {trade.key_text} is released twice")
        seen.add(trade.key)


class _Pool:
    """One security's trades on their way to a cross, and those left out so far."""

    def __init__(self, trades: Sequence[ReleasedTrade]) -> None:
        self.candidates = sorted(trades, key=_sort_key)
        self.skipped: list[Skipped] = []

    def leave_out(self, reason: SkipReason, why: Callable[[ReleasedTrade], str | None]) -> None:
        kept = []
        for trade in self.candidates:
            detail = why(trade)
            if detail is None:
                kept.append(trade)
            else:
                self.skipped.append(Skipped(trade.proposal_id, trade.seq, reason, detail))
        self.candidates = kept

    def side(self, side: Side) -> list[ReleasedTrade]:
        return [trade for trade in self.candidates if trade.side is side]


def _unit(trades: Sequence[ReleasedTrade]) -> Decimal:
    return MICRO_SHARE if all(not trade.whole for trade in trades) else Decimal(1)


def _offered(trade: ReleasedTrade, unit: Decimal) -> int:
    """Units of ``unit`` the trade can cross: all of it, or its whole shares."""
    return int(trade.quantity / unit)


def _pro_rata(trades: Sequence[ReleasedTrade], total: int, unit: Decimal) -> list[Decimal]:
    offered = [_offered(trade, unit) for trade in trades]
    whole = sum(offered)
    units = shares_of(total, [n * total for n in offered], whole)
    return [unit * n for n in units]


def _eligible(
    security: str, trades: Sequence[ReleasedTrade], reference: Reference | None, policy: CrossPolicy
) -> tuple[_Pool, Decimal]:
    """One security's trades that may cross, and the unit they cross in; each other
    trade is left out with the first reason that holds."""
    pool = _Pool(trades)
    for reason, check in TRADE_CHECKS.items():
        pool.leave_out(reason, _under(check, policy))
    if reference is None:
        pool.leave_out(SkipReason.NO_REFERENCE, lambda _: f"no reference price for {security}")

    buyers = {t.account_id for t in pool.side(Side.BUY)}
    both = buyers & {t.account_id for t in pool.side(Side.SELL)}
    pool.leave_out(
        SkipReason.SAME_ACCOUNT,
        lambda t: (
            f"account {t.account_id} both buys and sells {security}"
            if t.account_id in both
            else None
        ),
    )
    buying = {t.household_id for t in pool.side(Side.BUY)}
    pool.leave_out(
        SkipReason.HOUSEHOLD_WASH,
        lambda t: (
            f"a loss sale its household {t.household_id} buys in the cross"
            if t.side is Side.SELL and t.loss and t.household_id in buying
            else None
        ),
    )
    unit = _unit(pool.candidates)
    pool.leave_out(
        SkipReason.FRACTION,
        lambda t: (
            "less than a share, in a cross of whole shares" if _offered(t, unit) == 0 else None
        ),
    )
    sides = {t.side for t in pool.candidates}
    pool.leave_out(
        SkipReason.NO_COUNTERPARTY,
        lambda t: (
            f"no {t.side.opposite} of {security} may cross with it"
            if t.side.opposite not in sides
            else None
        ),
    )
    return pool, unit


def _plan(
    security: str,
    trades: Sequence[ReleasedTrade],
    reference: Reference | None,
    policy: CrossPolicy,
    batch_id: str,
) -> tuple[Cross | None, dict[tuple[str, int], Decimal], list[Skipped]]:
    """One security's cross (if any), the shares each trade crosses, and who was
    left out and why."""
    pool, unit = _eligible(security, trades, reference, policy)
    if not pool.candidates or reference is None:
        return None, {}, pool.skipped

    buys, sells = pool.side(Side.BUY), pool.side(Side.SELL)
    total = min(sum(_offered(t, unit) for t in buys), sum(_offered(t, unit) for t in sells))
    crossed: dict[tuple[str, int], Decimal] = {}
    legs: list[Leg] = []
    for side_trades in (buys, sells):
        for trade, quantity in zip(side_trades, _pro_rata(side_trades, total, unit), strict=True):
            if quantity == 0:
                detail = f"its pro-rata share of the cross of {security} rounded to no shares"
                pool.skipped.append(
                    Skipped(trade.proposal_id, trade.seq, SkipReason.ROUNDED_OUT, detail)
                )
                continue
            crossed[trade.key] = quantity
            lots, _ = split_lots(trade.lots, quantity)
            legs.append(
                Leg(trade.proposal_id, trade.seq, trade.account_id, trade.side, quantity, lots)
            )
    made = Cross(
        cross_id=order_id(batch_id, "X", security),
        security_id=security,
        quantity=unit * total,
        price=reference.price,
        source=reference.source,
        at=reference.at,
        legs=tuple(legs),
    )
    return made, crossed, pool.skipped


def _rest(trade: ReleasedTrade, crossed: Decimal) -> ReleasedTrade | None:
    if crossed == trade.quantity:
        return None
    if crossed == 0:
        return trade
    _, lots = split_lots(trade.lots, crossed)
    return replace(trade, quantity=trade.quantity - crossed, lots=lots)


def cross(
    trades: Sequence[ReleasedTrade],
    references: Mapping[str, Reference],
    policy: CrossPolicy,
    *,
    batch_id: str,
) -> tuple[tuple[Cross, ...], tuple[ReleasedTrade, ...], tuple[Skipped, ...]]:
    """Cross what can be crossed of ``trades`` at ``references`` (by security).

    Returns the crosses (one a security, by security), what is left of each trade for
    market (the trades not crossed at all as they came, those crossed in part with
    their remaining quantity and lots; by ``(proposal_id, seq)``), and why trades that
    had an opposite trade of their security in the batch did not cross at all (by
    ``(proposal_id, seq)``). A trade whose security has no opposite trade in the batch
    had nothing to cross with and is not listed as skipped.
    """
    _check_unique(trades)
    for security, reference in references.items():
        if reference.security_id != security:
            raise ValidationError(
                f"the reference for {security} is a price of {reference.security_id}"
            )
    by_security: dict[str, list[ReleasedTrade]] = defaultdict(list)
    for trade in trades:
        by_security[trade.security_id].append(trade)

    crosses: list[Cross] = []
    crossed: dict[tuple[str, int], Decimal] = {}
    skipped: list[Skipped] = []
    for security in sorted(by_security):
        group = by_security[security]
        if len({trade.side for trade in group}) < 2:
            continue
        made, quantities, left_out = _plan(
            security, group, references.get(security), policy, batch_id
        )
        if made is not None:
            crosses.append(made)
        crossed.update(quantities)
        skipped.extend(left_out)

    remaining = []
    for trade in sorted(trades, key=lambda t: t.key):
        rest = _rest(trade, crossed.get(trade.key, Decimal(0)))
        if rest is not None:
            remaining.append(rest)
    return (
        tuple(crosses),
        tuple(remaining),
        tuple(sorted(skipped, key=lambda s: (s.proposal_id, s.seq))),
    )
