"""A few accounts written as text, laid out as a book, for the monitor's tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np

from poise.domain.accounts import Account, CashReserve, Registration
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind
from poise.domain.transactions import CashFlow, CashFlowKind
from poise.monitor.book import BandPolicy, Book, build_book
from poise.monitor.drift import BlockDrift, scan

D = Decimal
CLASSES = {"AAA": "us_equity", "BBB": "us_equity", "CCC": "intl_equity", "BND": "fixed_income"}


def band(text: str) -> Band:
    """'abs 0.05 rel 0.25', 'abs 0.05', 'rel 0.25' or ''."""
    words = text.split()
    values = dict(zip(words[::2], words[1::2], strict=True))
    return Band(
        absolute=D(values["abs"]) if "abs" in values else None,
        relative=D(values["rel"]) if "rel" in values else None,
    )


def model(model_id: str, text: str) -> Model:
    """One target a line: 'security AAA 0.6 abs 0.05', 'model EQ 0.7', 'cash 0.1'."""
    targets = []
    for line in text.strip().splitlines():
        words = line.split()
        kind = TargetKind(words[0])
        if kind in (TargetKind.CASH, TargetKind.DEFAULT):
            target_id, rest = "", words[1:]
        else:
            target_id, rest = words[1], words[2:]
        weight = (
            D(rest[0])
            if rest and kind not in (TargetKind.ASSET_CLASS, TargetKind.DEFAULT)
            else D(0)
        )
        bands = rest[1:] if kind not in (TargetKind.ASSET_CLASS, TargetKind.DEFAULT) else rest
        targets.append(ModelTarget(kind, target_id, weight, band(" ".join(bands))))
    return Model(model_id, model_id, tuple(targets))


def account(
    account_id: str,
    model_id: str,
    cash: str,
    *,
    reserve: str = "0",
    reserve_pct: str = "0",
    tolerance: str = "",
) -> Account:
    return Account(
        account_id=account_id,
        household_id="H1",
        registration=Registration.TAXABLE,
        model_id=model_id,
        cash=D(cash),
        reserve=CashReserve(D(reserve), D(reserve_pct)),
        tolerance=band(tolerance),
    )


def holdings(account_id: str, text: str) -> list[TaxLot]:
    """'AAA 70, BBB 20' → one lot per holding."""
    lots = []
    for i, part in enumerate(text.split(",")):
        security, quantity = part.split()
        lots.append(
            TaxLot(f"{account_id}-{i}", account_id, security, D(quantity), D(0), date(2020, 1, 2))
        )
    return lots


def withdrawal(account_id: str, amount: str) -> CashFlow:
    return CashFlow(
        f"W-{account_id}", account_id, CashFlowKind.WITHDRAWAL, D(amount), date(2022, 12, 1)
    )


def book_of(
    accounts: list[Account],
    lots: list[TaxLot],
    models: list[Model],
    *,
    flows: list[CashFlow] | None = None,
    preset: str = "5/25",
) -> Book:
    return build_book(
        accounts=accounts,
        lots=lots,
        models={m.model_id: m for m in models},
        asset_class=CLASSES,
        cash_flows=flows or [],
        policy=BandPolicy.preset(preset),
    )


def prices_of(book: Book, prices: dict[str, float]) -> np.ndarray:
    return np.array([prices[s] for s in book.securities])


class Scanned:
    """Drift of a book, looked up by account and security."""

    def __init__(self, book: Book, prices: dict[str, float]) -> None:
        self.blocks = scan(book, prices_of(book, prices))

    def _find(self, account_id: str) -> tuple[BlockDrift, int]:
        for block in self.blocks:
            if account_id in block.block.account_ids:
                return block, block.block.account_ids.index(account_id)
        raise KeyError(account_id)

    def drift(self, account_id: str, security: str) -> float:
        block, row = self._find(account_id)
        return float(block.drift[row, block.block.layout.securities.index(security)])

    def width(self, account_id: str, security: str) -> float:
        block, row = self._find(account_id)
        return float(block.width[row, block.block.layout.securities.index(security)])

    def breached(self, account_id: str) -> set[str]:
        """Securities and asset classes out of band, and 'cash short' / 'cash excess'."""
        block, row = self._find(account_id)
        layout = block.block.layout
        found = {s for j, s in enumerate(layout.securities) if block.breach[row, j]}
        found |= {f"class {c}" for k, c in enumerate(layout.classes) if block.class_breach[row, k]}
        if block.extra_breach[row].any():
            found.add("outside the model")
        if block.cash_short[row]:
            found.add("cash short")
        if block.cash_excess[row]:
            found.add("cash excess")
        return found

    def value(self, account_id: str) -> float:
        block, row = self._find(account_id)
        return float(block.value[row])

    def class_weight(self, account_id: str, asset_class: str) -> float:
        block, row = self._find(account_id)
        return float(block.class_weight[row, block.block.layout.classes.index(asset_class)])
