"""Suitability: the portfolio's risk within the client's tolerance, complex products
only for clients marked eligible, and nothing the client has excluded.

The client's risk tolerance and exclusions are those of their profile
(:class:`~poise.domain.clients.ClientProfile`); whether they may hold complex products
is a flag no profile holds yet — the client file would need a ``complex_eligible``
column — so it comes in the portfolio's :class:`~poise.comply.views.Client`. A
complex product is a security carrying one of the rule's ``tags`` (the security
master has no such kind yet)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from poise.comply.findings import Finding
from poise.comply.rules.base import Direction, Param, Rule, ids, pct, usd
from poise.comply.views import Client, Portfolio, TradeRow
from poise.domain.accounts import Restrictions
from poise.domain.clients import RiskTolerance
from poise.domain.money import ZERO
from poise.optimize.risk import RiskModel
from poise.optimize.trades import Side

__all__ = ["ClientExclusions", "ComplexProducts", "RiskWithinTolerance", "volatility"]

COMPLEX = frozenset({"leveraged", "inverse", "options", "structured"})


def tolerances(value: object) -> dict[RiskTolerance, float]:
    """A mapping of risk tolerance to the largest volatility allowed (0.12 is 12%)."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping of risk tolerance to volatility, got {value!r}")
    read = {}
    for k, v in value.items():
        try:
            tolerance = RiskTolerance(k)
        except ValueError:
            raise ValueError(
                f"no risk tolerance {k!r}; tolerances: {', '.join(RiskTolerance)}"
            ) from None
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 10:
            raise TypeError(f"expected a volatility for {k}, got {v!r}")
        read[tolerance] = float(v)
    return read


_INDEX: dict[int, tuple[RiskModel, dict[str, int]]] = {}  # id of a model → it, its index


def _index(model: RiskModel) -> dict[str, int]:
    """Each security's row in ``model``, worked out once a model (a firm's run shares
    one)."""
    kept = _INDEX.get(id(model))
    if kept is None or kept[0] is not model:
        if len(_INDEX) > 64:
            _INDEX.clear()
        kept = (model, {s: i for i, s in enumerate(model.ids)})
        _INDEX[id(model)] = kept
    return kept[1]


def volatility(after: Portfolio) -> float | None:
    """The household's annual volatility from the risk model (cash at none); None
    where no model is given or it does not cover every holding."""
    model = after.risk
    if model is None or not len(after.row_security):
        return None
    codes, names = after.codes["security"]
    index = _index(model)
    try:
        rows = np.fromiter((index[s] for s in names), dtype=np.int64, count=len(names))
    except KeyError:
        return None
    weights = np.bincount(codes, after.household_weight, len(names))
    factor = model.exposures[rows].T @ weights
    return math.sqrt(float(factor @ factor) + float(model.specific[rows] @ weights**2))


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskWithinTolerance(Rule):
    """The household's volatility after the trades at most the limit of its client's
    risk tolerance (``max_volatility``: tolerance → annual volatility)."""

    kind: ClassVar[str] = "risk_tolerance"
    PARAMS: ClassVar[dict[str, Param]] = {
        "max_volatility": Param(
            tolerances, Direction.LOWER, about="risk tolerance → the largest annual volatility"
        ),
    }

    max_volatility: Mapping[RiskTolerance, float]

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        tolerance = after.client.risk_tolerance
        limit = self.max_volatility.get(tolerance) if tolerance else None
        if tolerance is None or limit is None:
            return []
        measured = volatility(after)
        if measured is None or measured <= limit + 1e-12:
            return []
        return [
            self.found(
                measured,
                limit,
                f"household {after.household_id} would have a volatility of {pct(measured)} a "
                f"year, above the {pct(limit)} the {self.rule_id} rule allows a "
                f"{tolerance.value.replace('_', ' ')} client",
                accounts=tuple(a.account_id for a in after.accounts),
            )
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class ComplexProducts(Rule):
    """No purchase of a complex product (a security tagged with one of ``tags``) for
    a client not marked eligible."""

    kind: ClassVar[str] = "complex_products"
    PARAMS: ClassVar[dict[str, Param]] = {
        "tags": Param(ids, Direction.MORE, required=False, about="what marks a complex product"),
    }

    tags: frozenset[str] = COMPLEX

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        if after.client.complex_eligible:
            return []
        found = []
        for row in trades:
            hit = row.security.tags & self.tags
            if row.trade.side is Side.BUY and hit:
                found.append(
                    self.found(
                        row.value,
                        ZERO,
                        f"account {row.account_id} buys {row.security.symbol} "
                        f"({', '.join(sorted(hit))}), a complex product, for a client not "
                        f"eligible for them under the {self.rule_id} rule",
                        securities=(row.trade.security_id,),
                        accounts=(row.account_id,),
                    )
                )
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientExclusions(Rule):
    """No purchase of a security the client excluded, by id or by tag."""

    kind: ClassVar[str] = "client_exclusions"
    PARAMS: ClassVar[dict[str, Param]] = {}

    def restrictions(self, client: Client) -> Restrictions:
        """The optimiser's twin: the client's exclusions as an account's restrictions."""
        return Restrictions(do_not_buy=client.exclusions, excluded_tags=client.excluded_tags)

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        client = after.client
        if not client.exclusions and not client.excluded_tags:
            return []
        found = []
        for row in trades:
            if row.trade.side is not Side.BUY:
                continue
            tags = row.security.tags & client.excluded_tags
            if row.trade.security_id in client.exclusions or tags:
                why = f"tagged {', '.join(sorted(tags))}" if tags else "by name"
                found.append(
                    self.found(
                        row.value,
                        ZERO,
                        f"account {row.account_id} buys {row.security.symbol} "
                        f"({usd(row.value)}), which the client has excluded ({why})",
                        securities=(row.trade.security_id,),
                        accounts=(row.account_id,),
                    )
                )
        return found
