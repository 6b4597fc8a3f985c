"""The demo firm: deterministic, internally consistent, and priced at real closes.

Every check here is one a firm's operations team would make on a custodian's files:
ids resolve, models add up to exactly 100%, each lot's cost is its shares times the
close of the day it was bought, the cash ledger ties out to the balance.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from poise.demo import KINDS, Firm, Market, build_firm, generate_firm
from poise.domain.accounts import (
    Account,
    CashReserve,
    Household,
    Registration,
    Restrictions,
    TaxRates,
)
from poise.domain.clients import ClientProfile, RiskTolerance
from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.models import Band, Model, ModelTarget, TargetKind, resolve
from poise.domain.money import ZERO, D, cents, is_decimal_text
from poise.domain.prices import Price
from poise.domain.securities import Security, SecurityKind, TradeUnit, Trading
from poise.domain.transactions import CashFlow, CashFlowKind, Transaction, TxnKind
from poise.ingest.formats import FORMATS, Column, ColumnType

SMALL = 10  # households in the conftest's firm


def _items(text: str) -> list[str]:
    return [item for item in text.split(";") if item]


def _opt(text: str) -> Decimal | None:
    return D(text) if text else None


def _by(frame: pl.DataFrame, key: str) -> dict[str, dict[str, str]]:
    return {row[key]: row for row in frame.to_dicts()}


def _closing_prices(firm: Firm) -> dict[str, Decimal]:
    last = firm.prices.filter(pl.col("as_of") == firm.as_of.isoformat())
    return {row["security_id"]: D(row["price"]) for row in last.to_dicts()}


def _lot_values(firm: Firm) -> list[tuple[dict[str, str], Decimal]]:
    closes = _closing_prices(firm)
    return [(lot, D(lot["quantity"]) * closes[lot["security_id"]]) for lot in firm.lots.to_dicts()]


# ── shape ────────────────────────────────────────────────────────────────────────


def test_generate_when_same_seed_then_same_firm_cell_for_cell(firm: Firm, data_dir: Path) -> None:
    again = generate_firm(households=SMALL, seed=7, data_dir=data_dir)
    assert again.as_of == firm.as_of
    for kind, frame in firm.frames().items():
        assert frame.equals(again.frames()[kind]), kind


def test_generate_when_other_seed_then_other_books(firm: Firm, data_dir: Path) -> None:
    other = generate_firm(households=SMALL, seed=8, data_dir=data_dir)
    assert not other.lots.equals(firm.lots)
    assert not other.accounts.equals(firm.accounts)
    assert other.securities.equals(firm.securities)
    assert other.models.equals(firm.models)


def test_generate_when_more_households_then_more_of_everything(firm: Firm, data_dir: Path) -> None:
    bigger = generate_firm(households=3 * SMALL, seed=7, data_dir=data_dir)
    for f, n in ((firm, SMALL), (bigger, 3 * SMALL)):
        assert f.households.height == n
        assert n <= f.clients.height <= 2 * n
        assert n <= f.accounts.height <= 6 * n
        assert f.cash_flows.height >= 1
    assert bigger.accounts.height > 2 * firm.accounts.height
    assert bigger.lots.height > 2 * firm.lots.height
    assert bigger.prices.equals(firm.prices)  # the market does not depend on the size


def test_generate_reports_progress(data_dir: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    generate_firm(households=2, seed=7, data_dir=data_dir, progress=lambda *a: seen.append(a))
    assert all(0 <= done <= total for _, done, total in seen)
    tasks = {task for task, _, _ in seen}
    assert {"market", "households", "lots", "transactions", "prices"} <= tasks
    lots = [(done, total) for task, done, total in seen if task == "lots"]
    assert lots[-1][0] == lots[-1][1]


def test_firm_is_valued_on_the_last_trading_day(firm: Firm) -> None:
    assert firm.as_of == date(2022, 12, 28)
    assert list(firm.frames()) == list(KINDS) == list(FORMATS)


# ── the canonical formats ────────────────────────────────────────────────────────


@pytest.mark.parametrize("kind", KINDS)
def test_columns_are_the_canonical_ones_in_order(firm: Firm, kind: str) -> None:
    fmt = FORMATS[kind]
    frame = firm.frames()[kind]
    assert fmt.required <= set(frame.columns)
    assert list(frame.columns) == [name for name in fmt.names if name in frame.columns]
    assert all(dtype == pl.String for dtype in frame.dtypes)
    assert frame.null_count().sum_horizontal().item() == 0
    assert frame.height > 0


def _cell_ok(column: Column, text: str, as_of: date) -> bool:  # noqa: PLR0911 - one per type
    if text == "":
        return not column.required
    kind = column.type
    if kind in (ColumnType.DECIMAL, ColumnType.NON_NEGATIVE, ColumnType.POSITIVE, ColumnType.RATE):
        if not is_decimal_text(text):
            return False
        value = D(text)
        return {
            ColumnType.DECIMAL: True,
            ColumnType.NON_NEGATIVE: value >= 0,
            ColumnType.POSITIVE: value > 0,
            ColumnType.RATE: 0 <= value <= 1,
        }[kind]
    if kind in (ColumnType.DATE, ColumnType.DATETIME):
        day = date.fromisoformat(text)
        return len(text) == 10 and (not column.not_future or day <= as_of)
    if kind is ColumnType.INTEGER:
        return text.isdigit()
    if kind is ColumnType.BOOLEAN:
        return text in ("true", "false")
    if kind is ColumnType.CHOICE:
        return text in column.choices
    if kind is ColumnType.LIST:
        return all(item and item.strip() == item for item in text.split(";"))
    return kind is ColumnType.TEXT


@pytest.mark.parametrize("kind", KINDS)
def test_every_cell_is_valid_text_for_its_column(firm: Firm, kind: str) -> None:
    fmt = FORMATS[kind]
    frame = firm.frames()[kind]
    for name in frame.columns:
        column = fmt.column(name)
        bad = [t for t in frame[name].unique().to_list() if not _cell_ok(column, t, firm.as_of)]
        assert not bad, f"{kind}.{name}: {bad[:5]}"


@pytest.mark.parametrize("kind", KINDS)
def test_keys_are_unique(firm: Firm, kind: str) -> None:
    frame = firm.frames()[kind]
    key = list(FORMATS[kind].key)
    assert frame.select(key).is_duplicated().sum() == 0


def test_every_reference_resolves(firm: Firm) -> None:
    frames = firm.frames()
    for kind, frame in frames.items():
        for column in FORMATS[kind].columns:
            if column.ref is None or column.name not in frame.columns:
                continue
            target = FORMATS[column.ref]
            known = set(frames[column.ref][target.group or target.key[0]].to_list())
            for text in frame[column.name].to_list():
                for item in _items(text) if column.type is ColumnType.LIST else [text]:
                    assert not item or item in known, f"{kind}.{column.name}: {item}"


def test_model_targets_name_securities_models_and_asset_classes(firm: Firm) -> None:
    securities = set(firm.securities["security_id"])
    classes = set(firm.securities["asset_class"])
    models = set(firm.models["model_id"])
    known = {"security": securities, "model": models, "asset_class": classes}
    for row in firm.models.to_dicts():
        if row["kind"] == "cash":
            assert row["target_id"] == ""
        else:
            assert row["target_id"] in known[row["kind"]], row


# ── the security master and models ───────────────────────────────────────────────


def test_securities_build_as_domain_objects_with_sound_replacements(firm: Firm) -> None:
    securities = {
        row["security_id"]: Security(
            security_id=row["security_id"],
            symbol=row["symbol"],
            name=row["name"],
            kind=SecurityKind(row["kind"]),
            asset_class=row["asset_class"],
            sub_class=row["sub_class"],
            trading=Trading(TradeUnit(row["trade_unit"]), D(row["trade_step"])),
            tags=frozenset(_items(row["tags"])),
            identity_group=row["identity_group"],
            replacements=tuple(_items(row["replacements"])),
        )
        for row in firm.securities.to_dicts()
    }
    assert len(securities) == 26
    for security in securities.values():
        if security.kind is SecurityKind.STOCK:
            assert 1 <= len(security.replacements) <= 2
            assert security.trading.unit is TradeUnit.WHOLE
        else:
            assert security.trading == Trading(TradeUnit.FRACTION, Decimal("0.001"))
        for other in security.replacements:
            assert securities[other].wash_sale_identity != security.wash_sale_identity
    assert securities["SPY"].wash_sale_identity == securities["VOO"].wash_sale_identity
    assert securities["VMFXX"].kind is SecurityKind.CASH_EQUIVALENT
    assert {"CVX", "XOM", "RRC"} <= {s for s, v in securities.items() if "fossil_fuels" in v.tags}
    for pair in (("KO", "PEP"), ("XOM", "CVX"), ("JPM", "BAC")):
        assert pair[1] in securities[pair[0]].replacements


def test_each_model_adds_up_to_exactly_one(firm: Firm) -> None:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in firm.models.to_dicts():
        if row["kind"] == "asset_class":
            assert D(row["weight"] or "0") == ZERO
            assert row["band_abs"] or row["band_rel"]
        else:
            totals[row["model_id"]] += D(row["weight"])
    assert set(totals) >= {"M-GROWTH", "M-BALANCED", "M-INCOME", "M-CORE"}
    assert all(total == Decimal(1) for total in totals.values()), totals


def test_models_build_and_the_model_of_models_resolves(firm: Firm) -> None:
    targets: dict[str, list[ModelTarget]] = defaultdict(list)
    names: dict[str, str] = {}
    for row in firm.models.to_dicts():
        names.setdefault(row["model_id"], row["model_name"])
        band = Band(_opt(row["band_abs"]), _opt(row["band_rel"]))
        targets[row["model_id"]].append(
            ModelTarget(TargetKind(row["kind"]), row["target_id"], D(row["weight"] or "0"), band)
        )
    models = {mid: Model(mid, names[mid], tuple(ts)) for mid, ts in targets.items()}
    core = resolve("M-CORE", models)
    assert sum(core.securities.values(), core.cash) == Decimal(1)
    assert core.securities["BND"] == Decimal("0.30") * Decimal("0.70")
    kinds = {t.kind for t in models["M-CORE"].targets}
    assert {TargetKind.MODEL, TargetKind.CASH, TargetKind.ASSET_CLASS} <= kinds


# ── households, clients, accounts ────────────────────────────────────────────────


def test_clients_build_and_their_model_matches_their_risk(firm: Firm) -> None:
    by_risk: dict[RiskTolerance, set[str]] = defaultdict(set)
    for row in firm.clients.to_dicts():
        client = ClientProfile(
            client_id=row["client_id"],
            household_id=row["household_id"],
            name=row["name"],
            risk_tolerance=RiskTolerance(row["risk_tolerance"]),
            horizon_years=int(row["horizon_years"]),
            model_id=row["model_id"],
            goals=tuple(_items(row["goals"])),
            exclusions=frozenset(_items(row["exclusions"])),
            esg=frozenset(_items(row["esg"])),
        )
        assert client.goals
        by_risk[client.risk_tolerance].add(row["model_id"])
    assert all(len(models) == 1 for models in by_risk.values())
    assert by_risk.get(RiskTolerance.AGGRESSIVE, {"M-GROWTH"}) == {"M-GROWTH"}
    for row in firm.households.to_dicts():
        Household(row["household_id"], row["name"], row["advisor"])


def _account(row: dict[str, str]) -> Account:
    return Account(
        account_id=row["account_id"],
        household_id=row["household_id"],
        registration=Registration(row["registration"]),
        custodian=row["custodian"],
        name=row["name"],
        model_id=row["model_id"],
        cash=D(row["cash"]),
        reserve=CashReserve(D(row["reserve_amount"]), D(row["reserve_pct"])),
        restrictions=Restrictions(
            frozenset(_items(row["do_not_buy"])),
            frozenset(_items(row["do_not_sell"])),
            frozenset(_items(row["excluded_tags"])),
        ),
        tax_rates=TaxRates(D(row["st_rate"]), D(row["lt_rate"]), D(row["state_rate"])),
        harvest=row["harvest"] == "true",
        tolerance=Band(_opt(row["band_abs"]), _opt(row["band_rel"])),
    )


def test_harvest_and_tax_rates_only_on_taxable_registrations(firm: Firm) -> None:
    accounts = [_account(row) for row in firm.accounts.to_dicts()]  # harvest checked here too
    for account in accounts:
        rates = account.tax_rates
        if account.registration.taxable:
            assert Decimal("0.24") <= rates.short_term <= Decimal("0.37")
            assert Decimal("0.15") <= rates.long_term <= Decimal("0.20")
            assert ZERO <= rates.state <= Decimal("0.093")
        else:
            assert not account.harvest
            assert rates == TaxRates()
    assert any(a.harvest for a in accounts)
    assert any(not a.registration.taxable for a in accounts)
    assert len({a.account_id for a in accounts}) == len(accounts)
    assert all(len(a.account_id) == 8 and a.account_id.isdigit() for a in accounts)


def test_restrictions_name_what_the_account_holds_or_its_clients_exclude(firm: Firm) -> None:
    held: dict[str, set[str]] = defaultdict(set)
    for lot in firm.lots.to_dicts():
        held[lot["account_id"]].add(lot["security_id"])
    excluded: dict[str, set[str]] = defaultdict(set)
    for client in firm.clients.to_dicts():
        excluded[client["household_id"]] |= set(_items(client["exclusions"]))
    for row in firm.accounts.to_dicts():
        assert set(_items(row["do_not_sell"])) <= held[row["account_id"]]
        assert set(_items(row["do_not_buy"])) == excluded[row["household_id"]]


def test_build_firm_when_no_households_then_validation_error(market: Market) -> None:
    with pytest.raises(ValidationError):
        build_firm(market, households=0)


def test_accounts_are_sized_like_an_rias_book(firm: Firm) -> None:
    invested: dict[str, Decimal] = defaultdict(Decimal)
    for lot, value in _lot_values(firm):
        invested[lot["account_id"]] += value
    for row in firm.accounts.to_dicts():
        cash = D(row["cash"])
        total = invested[row["account_id"]] + cash
        assert Decimal(40_000) < total < Decimal(5_100_000), row["account_id"]
        assert cash < total * Decimal("0.06")


# ── lots ─────────────────────────────────────────────────────────────────────────


def test_lot_cost_is_shares_times_the_real_close_of_that_day(
    firm: Firm, real_closes: pl.DataFrame
) -> None:
    closes = {row["Date"]: row for row in real_closes.to_dicts()}
    stock_lots = [lot for lot in firm.lots.to_dicts() if lot["security_id"] in real_closes.columns]
    assert len(stock_lots) > 50
    for lot in stock_lots[::3]:
        close = D(closes[lot["acquired"]][lot["security_id"]])
        assert D(lot["cost_basis"]) == cents(D(lot["quantity"]) * close), lot


def test_spy_lots_cost_a_tenth_of_the_index(firm: Firm, data_dir: Path) -> None:
    index = pl.read_csv(data_dir / "sp500_index.csv.gz", infer_schema=False)
    levels = dict(zip(index["Date"], index["SP500"], strict=True))
    spy = firm.lots.filter(pl.col("security_id") == "SPY").to_dicts()
    assert spy
    for lot in spy:
        price = D(levels[lot["acquired"]]) / 10
        assert D(lot["cost_basis"]) == cents(D(lot["quantity"]) * price)


def test_lots_hold_whole_shares_of_stocks_and_thousandths_of_funds(firm: Firm) -> None:
    units = _by(firm.securities, "security_id")
    for row in firm.lots.to_dicts():
        lot = TaxLot(
            lot_id=row["lot_id"],
            account_id=row["account_id"],
            security_id=row["security_id"],
            quantity=D(row["quantity"]),
            cost_basis=D(row["cost_basis"]),
            acquired=date.fromisoformat(row["acquired"]),
        )
        assert lot.quantity > ZERO
        assert lot.cost_basis > ZERO
        step = D(units[lot.security_id]["trade_step"])
        assert Trading(TradeUnit(units[lot.security_id]["trade_unit"]), step).allows(lot.quantity)
        assert date(2005, 1, 1) <= lot.acquired < date(2022, 12, 28)


def test_lots_show_both_gains_and_losses_and_recent_lots_often_lose(firm: Firm) -> None:
    gains = losses = recent = recent_losses = 0
    for lot, value in _lot_values(firm):
        loss = value < D(lot["cost_basis"])
        gains += not loss
        losses += loss
        if lot["acquired"] >= "2021-01-01":
            recent += 1
            recent_losses += loss
    assert gains > 0
    assert losses > 0
    assert recent > 20
    assert recent_losses / recent > 0.2


def test_each_account_holds_most_of_its_model(firm: Firm) -> None:
    weights: dict[str, set[str]] = defaultdict(set)
    for row in firm.models.to_dicts():
        if row["kind"] == "security":
            weights[row["model_id"]].add(row["target_id"])
    weights["M-CORE"] = weights["M-EQUITY-SLEEVE"] | weights["M-BOND-SLEEVE"]
    held: dict[str, set[str]] = defaultdict(set)
    for lot in firm.lots.to_dicts():
        held[lot["account_id"]].add(lot["security_id"])
    shares = [
        len(held[row["account_id"]] & weights[row["model_id"]]) / len(weights[row["model_id"]])
        for row in firm.accounts.to_dicts()
    ]
    assert sum(shares) / len(shares) > 0.6


# ── transactions, prices, cash flows ─────────────────────────────────────────────


def _transactions(firm: Firm) -> list[Transaction]:
    return [
        Transaction(
            txn_id=row["txn_id"],
            account_id=row["account_id"],
            kind=TxnKind(row["kind"]),
            trade_date=date.fromisoformat(row["trade_date"]),
            settle_date=date.fromisoformat(row["settle_date"]),
            amount=D(row["amount"]),
            security_id=row["security_id"] or None,
            quantity=D(row["quantity"]),
            description=row["description"],
        )
        for row in firm.transactions.to_dicts()
    ]


def test_every_lot_has_its_buy_settling_two_or_three_days_later(firm: Firm) -> None:
    buys = {
        (t.account_id, t.security_id, t.trade_date, t.quantity, t.amount): t
        for t in _transactions(firm)
        if t.kind is TxnKind.BUY
    }
    assert len(buys) == firm.lots.height
    for lot in firm.lots.to_dicts():
        key = (
            lot["account_id"],
            lot["security_id"],
            date.fromisoformat(lot["acquired"]),
            D(lot["quantity"]),
            D(lot["cost_basis"]),
        )
        buy = buys[key]
        assert buy.trade_date < buy.settle_date <= buy.trade_date + timedelta(days=7)
        assert buy.settle_date <= firm.as_of


def test_the_cash_ledger_ties_out_to_each_accounts_balance(firm: Firm) -> None:
    sign = {TxnKind.DEPOSIT: 1, TxnKind.DIVIDEND: 1, TxnKind.BUY: -1, TxnKind.WITHDRAWAL: -1}
    ledger: dict[str, Decimal] = defaultdict(Decimal)
    kinds = set()
    for t in sorted(_transactions(firm), key=lambda t: (t.account_id, t.txn_id)):
        ledger[t.account_id] += sign[t.kind] * t.amount
        assert ledger[t.account_id] >= ZERO, t  # never overdrawn on the way
        kinds.add(t.kind)
    assert {TxnKind.BUY, TxnKind.DEPOSIT, TxnKind.DIVIDEND} <= kinds
    for row in firm.accounts.to_dicts():
        assert ledger[row["account_id"]] == D(row["cash"]), row["account_id"]


def test_prices_cover_three_years_of_every_security_up_to_the_as_of_day(firm: Firm) -> None:
    securities = set(firm.securities["security_id"])
    per_security = firm.prices.group_by("security_id").agg(
        pl.len().alias("days"), pl.col("as_of").min().alias("first"), pl.col("as_of").max()
    )
    assert set(per_security["security_id"]) == securities
    assert per_security["days"].min() > 700
    assert set(per_security["as_of"]) == {"2022-12-28"}
    assert per_security["first"].max() < "2020-01-10"
    for row in firm.prices.to_dicts()[::97]:
        price = Price(
            row["security_id"],
            datetime.fromisoformat(row["as_of"]).replace(tzinfo=UTC),
            D(row["price"]),
            row["source"],
        )
        exponent = price.price.as_tuple().exponent
        assert isinstance(exponent, int)
        assert exponent >= -4
    closes = _closing_prices(firm)
    assert closes["SPY"] == Decimal("378.322")  # the index closed at 3,783.22
    assert closes["VMFXX"] == Decimal(1)


def test_cash_flows_are_pending_and_withdrawals_fit_the_account(firm: Firm) -> None:
    value: dict[str, Decimal] = {
        row["account_id"]: D(row["cash"]) for row in firm.accounts.to_dicts()
    }
    for lot, lot_value in _lot_values(firm):
        value[lot["account_id"]] += lot_value
    for row in firm.cash_flows.to_dicts():
        flow = CashFlow(
            flow_id=row["flow_id"],
            account_id=row["account_id"],
            kind=CashFlowKind(row["kind"]),
            amount=D(row["amount"]),
            requested=date.fromisoformat(row["requested"]),
            due=date.fromisoformat(row["due"]) if row["due"] else None,
        )
        assert firm.as_of - timedelta(days=14) <= flow.requested <= firm.as_of
        if flow.kind is CashFlowKind.WITHDRAWAL:
            assert flow.amount < value[flow.account_id]
