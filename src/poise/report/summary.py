"""The firm at a glance: households, accounts, assets by model, unrealised gains."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from poise.domain.accounts import Account
from poise.domain.lots import TaxLot
from poise.domain.money import ZERO, cents

__all__ = ["FirmSummary", "Holding", "ModelAssets", "RegistrationCount", "summarise"]


@dataclass(frozen=True, slots=True)
class Holding:
    """One security in one account, valued at the latest price."""

    account_id: str
    security_id: str
    quantity: Decimal
    basis: Decimal
    value: Decimal

    @property
    def gain(self) -> Decimal:
        return self.value - self.basis


@dataclass(frozen=True, slots=True)
class RegistrationCount:
    registration: str
    accounts: int
    value: Decimal


@dataclass(frozen=True, slots=True)
class ModelAssets:
    model_id: str
    name: str
    accounts: int
    value: Decimal


@dataclass(frozen=True, slots=True)
class FirmSummary:
    households: int
    accounts: int
    aum: Decimal
    cash: Decimal
    by_registration: tuple[RegistrationCount, ...]
    by_model: tuple[ModelAssets, ...]
    unrealised_gain: Decimal
    largest_gains: tuple[Holding, ...]
    largest_losses: tuple[Holding, ...]
    unpriced_lots: int


def holdings(lots: Sequence[TaxLot], prices: Mapping[str, Decimal]) -> tuple[list[Holding], int]:
    """Lots summed by account and security and valued; also how many lots had no price."""
    quantity: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    basis: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    unpriced = 0
    for lot in lots:
        if lot.security_id not in prices:
            unpriced += 1
            continue
        key = (lot.account_id, lot.security_id)
        quantity[key] += lot.quantity
        basis[key] += lot.basis
    result = [
        Holding(a, s, quantity[(a, s)], basis[(a, s)], cents(quantity[(a, s)] * prices[s]))
        for (a, s) in quantity
    ]
    return result, unpriced


def summarise(
    *,
    households: int,
    accounts: Sequence[Account],
    lots: Sequence[TaxLot],
    prices: Mapping[str, Decimal],
    model_names: Mapping[str, str],
    top: int = 5,
) -> FirmSummary:
    """Summarise a firm; money is exact, values are rounded to the cent per holding."""
    held, unpriced = holdings(lots, prices)
    value_of: dict[str, Decimal] = {a.account_id: a.cash for a in accounts}
    for h in held:
        value_of[h.account_id] = value_of.get(h.account_id, ZERO) + h.value

    by_reg: dict[str, list[Decimal]] = defaultdict(list)
    by_model: dict[str, list[Decimal]] = defaultdict(list)
    for a in accounts:
        by_reg[a.registration.value].append(value_of[a.account_id])
        by_model[a.model_id or ""].append(value_of[a.account_id])

    gains = sorted((h for h in held if h.gain > ZERO), key=lambda h: (-h.gain, h.account_id))
    losses = sorted((h for h in held if h.gain < ZERO), key=lambda h: (h.gain, h.account_id))
    return FirmSummary(
        households=households,
        accounts=len(accounts),
        aum=sum(value_of.values(), ZERO),
        cash=sum((a.cash for a in accounts), ZERO),
        by_registration=tuple(
            RegistrationCount(reg, len(values), sum(values, ZERO))
            for reg, values in sorted(by_reg.items(), key=lambda kv: -sum(kv[1], ZERO))
        ),
        by_model=tuple(
            ModelAssets(
                mid, model_names.get(mid, mid) if mid else "(no model)", len(v), sum(v, ZERO)
            )
            for mid, v in sorted(by_model.items(), key=lambda kv: -sum(kv[1], ZERO))
        ),
        unrealised_gain=sum((h.gain for h in held), ZERO),
        largest_gains=tuple(gains[:top]),
        largest_losses=tuple(losses[:top]),
        unpriced_lots=unpriced,
    )
