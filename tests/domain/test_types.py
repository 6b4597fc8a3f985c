"""Value types refuse bad data when built: securities, accounts, lots, transactions,
prices, client profiles, and the typed errors the shells map to exit codes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from poise.domain.accounts import (
    Account,
    CashReserve,
    Household,
    Registration,
    TaxRates,
)
from poise.domain.clients import ClientProfile, RiskTolerance
from poise.domain.errors import (
    ConfigError,
    FormatError,
    NotFoundError,
    PoiseError,
    StoreError,
    ValidationError,
)
from poise.domain.lots import TaxLot
from poise.domain.models import Band
from poise.domain.money import ZERO, D
from poise.domain.prices import Price
from poise.domain.securities import Security, SecurityKind, TradeUnit, Trading
from poise.domain.transactions import CashFlow, CashFlowKind, LotRelieved, Transaction, TxnKind

# --- trading grid -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trading", "quantity", "down", "allowed"),
    [
        pytest.param(Trading(), "7.9", "7", False, id="whole-7.9"),
        pytest.param(Trading(), "12", "12", True, id="whole-12"),
        pytest.param(Trading(TradeUnit.FRACTION, D("0.001")), "2.3459", "2.345", False, id="frac"),
        pytest.param(Trading(TradeUnit.FRACTION, D("0.001")), "2.345", "2.345", True, id="frac-ok"),
        pytest.param(Trading(TradeUnit.ROUND_LOT, D("100")), "250", "200", False, id="lot-250"),
        pytest.param(Trading(TradeUnit.ROUND_LOT, D("100")), "99", "0", False, id="lot-99"),
        pytest.param(Trading(TradeUnit.ROUND_LOT, D("100")), "300", "300", True, id="lot-300"),
        pytest.param(Trading(TradeUnit.ROUND_LOT, D("1000")), "0", "0", True, id="lot-zero"),
    ],
)
def test_trading_when_quantity_given_then_rounds_down_to_the_grid_and_says_if_on_it(
    trading: Trading, quantity: str, down: str, allowed: bool
) -> None:
    assert trading.round_down(D(quantity)) == D(down)
    assert trading.allows(D(quantity)) is allowed
    assert trading.allows(trading.round_down(D(quantity)))


@pytest.mark.parametrize(
    ("unit", "step", "message"),
    [
        (TradeUnit.WHOLE, "0.5", "steps of 1"),
        (TradeUnit.WHOLE, "100", "steps of 1"),
        (TradeUnit.ROUND_LOT, "100.5", "whole number of shares"),
        (TradeUnit.FRACTION, "0", "must be positive"),
        (TradeUnit.FRACTION, "-0.001", "must be positive"),
    ],
)
def test_trading_when_step_breaks_its_unit_then_validation_error(
    unit: TradeUnit, step: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Trading(unit, D(step))


# --- securities ---------------------------------------------------------------------------


def security(**changes: object) -> Security:
    fields: dict[str, object] = {
        "security_id": "VTI",
        "symbol": "VTI",
        "name": "Vanguard Total Stock Market ETF",
        "kind": SecurityKind.ETF,
        "asset_class": "us_equity",
    }
    return Security(**{**fields, **changes})  # type: ignore[arg-type]


def test_security_when_well_formed_then_built_with_usd_and_whole_shares() -> None:
    vti = security(replacements=("ITOT", "SCHB"))

    assert vti.currency == "USD"
    assert vti.trading == Trading(TradeUnit.WHOLE, D("1"))
    assert vti.replacements == ("ITOT", "SCHB")


@pytest.mark.parametrize("currency", ["usd", "US", "USDX", "U5D", ""])
def test_security_when_currency_is_not_iso_4217_then_validation_error(currency: str) -> None:
    with pytest.raises(ValidationError, match="not ISO 4217"):
        security(currency=currency)


def test_security_when_it_lists_itself_as_replacement_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="cannot replace itself"):
        security(replacements=("ITOT", "VTI"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"security_id": " "}, "needs an id"), ({"asset_class": ""}, "needs an asset class")],
)
def test_security_when_id_or_asset_class_blank_then_validation_error(
    changes: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        security(**changes)


def test_security_wash_sale_identity_when_grouped_then_group_else_own_id() -> None:
    assert security(identity_group="sp500").wash_sale_identity == "sp500"
    assert security().wash_sale_identity == "VTI"


def test_security_when_changed_then_a_new_object_and_the_old_one_stands() -> None:
    vti = security()

    with pytest.raises(dataclasses.FrozenInstanceError):
        vti.symbol = "ITOT"  # type: ignore[misc]
    assert dataclasses.replace(vti, symbol="VTI.X").symbol == "VTI.X"
    assert vti.symbol == "VTI"


# --- households and accounts ----------------------------------------------------------


@pytest.mark.parametrize("registration", list(Registration))
def test_registration_when_asked_how_it_is_taxed_then_exactly_one_answer(
    registration: Registration,
) -> None:
    answers = [registration.taxable, registration.tax_deferred, registration.tax_exempt]

    assert answers.count(True) == 1


def test_registration_when_taxed_as_realised_then_taxable_joint_and_trust_only() -> None:
    taxable = {r for r in Registration if r.taxable}

    assert taxable == {Registration.TAXABLE, Registration.JOINT, Registration.TRUST}
    assert Registration.ROTH_IRA.tax_exempt
    assert Registration.K401.tax_deferred


@pytest.mark.parametrize("registration", [Registration.TAXABLE, Registration.JOINT])
def test_account_when_taxable_and_harvesting_then_built(registration: Registration) -> None:
    account = Account("ACC-1", "HH-1", registration, cash=D("2500.00"), harvest=True)

    assert account.harvest
    assert account.cash == D("2500.00")


@pytest.mark.parametrize(
    "registration", [Registration.ROTH_IRA, Registration.TRADITIONAL_IRA, Registration.HSA]
)
def test_account_when_harvesting_in_a_non_taxable_account_then_validation_error(
    registration: Registration,
) -> None:
    with pytest.raises(ValidationError, match="needs a taxable account"):
        Account("ACC-1", "HH-1", registration, harvest=True)


def test_account_when_cash_is_negative_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="cash cannot be negative"):
        Account("ACC-1", "HH-1", Registration.TAXABLE, cash=D("-0.01"))


@pytest.mark.parametrize(
    ("account_id", "household_id", "message"),
    [(" ", "HH-1", "needs an id"), ("ACC-1", "", "needs a household")],
)
def test_account_when_id_or_household_blank_then_validation_error(
    account_id: str, household_id: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Account(account_id, household_id, Registration.TAXABLE)


def test_household_when_id_blank_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="needs an id"):
        Household("", "The Smiths")


@pytest.mark.parametrize(
    ("field", "rate"),
    [("short_term", "1.01"), ("long_term", "-0.01"), ("state", "13.3")],
)
def test_tax_rates_when_a_rate_lies_outside_0_to_1_then_validation_error(
    field: str, rate: str
) -> None:
    with pytest.raises(ValidationError, match=f"tax rate {field}"):
        TaxRates(**{field: D(rate)})


def test_tax_rates_when_rates_are_0_and_1_then_built() -> None:
    rates = TaxRates(short_term=D("1"), long_term=D("0"), state=D("0.133"))

    assert (rates.short_term, rates.long_term, rates.state) == (D("1"), D("0"), D("0.133"))


@pytest.mark.parametrize(
    ("account_value", "required"),
    [("100000", "5000"), ("400000", "8000.00")],
)
def test_cash_reserve_when_amount_and_fraction_set_then_the_larger_is_required(
    account_value: str, required: str
) -> None:
    reserve = CashReserve(amount=D("5000"), fraction=D("0.02"))

    assert reserve.required(D(account_value)) == D(required)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"amount": "-1"}, "cannot be negative"), ({"fraction": "1.5"}, "between 0 and 1")],
)
def test_cash_reserve_when_negative_or_fraction_above_one_then_validation_error(
    changes: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        CashReserve(**{k: D(v) for k, v in changes.items()})


@pytest.mark.parametrize("field", ["absolute", "relative"])
def test_band_when_negative_then_validation_error(field: str) -> None:
    with pytest.raises(ValidationError, match=f"band {field} cannot be negative"):
        Band(**{field: D("-0.05")})


# --- tax lots -------------------------------------------------------------------------


def lot(**changes: object) -> TaxLot:
    fields: dict[str, object] = {
        "lot_id": "L1",
        "account_id": "ACC-1",
        "security_id": "VTI",
        "quantity": D("100"),
        "cost_basis": D("5000.00"),
        "acquired": date(2024, 3, 1),
    }
    return TaxLot(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quantity": D("-1")}, "quantity cannot be negative"),
        ({"cost_basis": D("-0.01")}, "cost basis cannot be negative"),
        ({"adjusted_basis": D("-0.01")}, "adjusted basis cannot be negative"),
        ({"disallowed_loss": D("-600")}, "disallowed loss is a positive amount"),
        ({"lot_id": " "}, "needs an id"),
    ],
)
def test_tax_lot_when_an_amount_is_negative_or_id_blank_then_validation_error(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        lot(**changes)


def test_tax_lot_when_not_adjusted_then_cost_and_acquisition_date_count() -> None:
    plain_lot = lot()

    assert plain_lot.basis == D("5000.00")
    assert plain_lot.held_since == date(2024, 3, 1)
    assert plain_lot.basis_per_share == D("50")


def test_tax_lot_when_wash_sale_adjusted_then_adjusted_basis_and_start_count() -> None:
    washed = lot(
        adjusted_basis=D("5600.00"),
        holding_start=date(2022, 5, 1),
        disallowed_loss=D("600.00"),
    )

    assert washed.basis == D("5600.00")
    assert washed.held_since == date(2022, 5, 1)
    assert washed.basis_per_share == D("56")


def test_tax_lot_when_empty_then_basis_per_share_is_zero() -> None:
    assert lot(quantity=ZERO, cost_basis=ZERO).basis_per_share == ZERO


# --- transactions and cash flows -------------------------------------------------------

TRADE = date(2024, 6, 14)
SETTLE = date(2024, 6, 17)


def test_transaction_when_sale_lists_lots_that_add_up_then_built() -> None:
    sale = Transaction(
        "T1",
        "ACC-1",
        TxnKind.SELL,
        TRADE,
        SETTLE,
        amount=D("9000.00"),
        security_id="VTI",
        quantity=D("150"),
        lots=(LotRelieved("L1", D("100")), LotRelieved("L2", D("50"))),
    )

    assert sum((r.quantity for r in sale.lots), ZERO) == sale.quantity


def test_transaction_when_relieved_lots_do_not_add_up_to_the_sale_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="do not add up to the shares sold"):
        Transaction(
            "T1",
            "ACC-1",
            TxnKind.SELL,
            TRADE,
            SETTLE,
            amount=D("9000.00"),
            security_id="VTI",
            quantity=D("150"),
            lots=(LotRelieved("L1", D("100")), LotRelieved("L2", D("49"))),
        )


def test_transaction_when_it_settles_before_trade_date_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="settles before it trades"):
        Transaction("T1", "ACC-1", TxnKind.DEPOSIT, TRADE, TRADE - timedelta(days=1), D("100"))


def test_transaction_when_it_settles_on_trade_date_then_built() -> None:
    deposit = Transaction("T1", "ACC-1", TxnKind.DEPOSIT, TRADE, TRADE, amount=D("100"))

    assert deposit.security_id is None


@pytest.mark.parametrize(
    ("kind", "changes", "message"),
    [
        (TxnKind.DEPOSIT, {"amount": D("-100")}, "amount and quantity are positive"),
        (TxnKind.BUY, {"security_id": "VTI", "quantity": D("-1")}, "are positive"),
        (TxnKind.BUY, {"quantity": D("10")}, "a buy names a security"),
        (TxnKind.DIVIDEND, {"amount": D("12.34")}, "a dividend names a security"),
        (TxnKind.SELL, {"security_id": "VTI"}, "a sell moves shares"),
        (TxnKind.TRANSFER_IN, {}, "a transfer_in moves shares"),
        (
            TxnKind.BUY,
            {"security_id": "VTI", "quantity": D("10"), "lots": (LotRelieved("L1", D("10")),)},
            "only a sale relieves lots",
        ),
    ],
)
def test_transaction_when_fields_contradict_its_kind_then_validation_error(
    kind: TxnKind, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Transaction("T1", "ACC-1", kind, TRADE, SETTLE, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("quantity", ["0", "-10"])
def test_lot_relieved_when_quantity_not_positive_then_validation_error(quantity: str) -> None:
    with pytest.raises(ValidationError, match="must be positive"):
        LotRelieved("L1", D(quantity))


@pytest.mark.parametrize(
    ("kind", "signed"),
    [(CashFlowKind.DEPOSIT, "2500.00"), (CashFlowKind.WITHDRAWAL, "-2500.00")],
)
def test_cash_flow_when_signed_then_deposits_add_and_withdrawals_take_away(
    kind: CashFlowKind, signed: str
) -> None:
    flow = CashFlow("F1", "ACC-1", kind, D("2500.00"), TRADE, due=SETTLE)

    assert flow.signed == D(signed)


@pytest.mark.parametrize(
    ("amount", "due", "message"),
    [
        ("0", None, "amount must be positive"),
        ("-50", None, "amount must be positive"),
        ("50", date(2024, 6, 13), "due before it was requested"),
    ],
)
def test_cash_flow_when_amount_or_due_date_wrong_then_validation_error(
    amount: str, due: date | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        CashFlow("F1", "ACC-1", CashFlowKind.WITHDRAWAL, D(amount), TRADE, due=due)


# --- prices -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "as_of",
    [
        datetime(2024, 6, 14, 20, 0, tzinfo=UTC),
        datetime(2024, 6, 14, 16, 0, tzinfo=ZoneInfo("America/New_York")),
        datetime(2024, 6, 14, 16, 0, tzinfo=timezone(timedelta(hours=-4))),
    ],
)
def test_price_when_positive_and_time_has_a_zone_then_built(as_of: datetime) -> None:
    price = Price("VTI", as_of, D("265.31"), source="close")

    assert price.price == D("265.31")


@pytest.mark.parametrize("amount", ["0", "-1.00"])
def test_price_when_not_positive_then_validation_error(amount: str) -> None:
    with pytest.raises(ValidationError, match="must be positive"):
        Price("VTI", datetime(2024, 6, 14, 20, 0, tzinfo=UTC), D(amount))


def test_price_when_time_is_naive_then_validation_error() -> None:
    naive = datetime(2024, 6, 14, 16, 0)  # noqa: DTZ001 - a naive time is what this test feeds in

    with pytest.raises(ValidationError, match="needs a timezone"):
        Price("VTI", naive, D("265.31"))


# --- client profiles ----------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [0, 30, 100])
def test_client_profile_when_horizon_within_0_to_100_years_then_built(horizon: int) -> None:
    client = ClientProfile("C1", "HH-1", "Ada Smith", RiskTolerance.MODERATE, horizon)

    assert client.horizon_years == horizon


@pytest.mark.parametrize(
    ("client_id", "horizon", "message"),
    [("C1", -1, "horizon must be 0 to 100"), ("C1", 101, "horizon"), (" ", 10, "needs an id")],
)
def test_client_profile_when_horizon_out_of_range_or_id_blank_then_validation_error(
    client_id: str, horizon: int, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ClientProfile(client_id, "HH-1", "Ada Smith", RiskTolerance.MODERATE, horizon)


# --- typed errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "exit_code", "http_status", "builtin"),
    [
        (ValidationError, 3, 422, ValueError),
        (FormatError, 4, 400, PoiseError),
        (NotFoundError, 5, 404, LookupError),
        (StoreError, 6, 503, PoiseError),
        (ConfigError, 2, 500, PoiseError),
        (PoiseError, 1, 500, Exception),
    ],
)
def test_error_when_raised_then_shells_map_it_to_its_exit_code_and_status(
    error: type[PoiseError], exit_code: int, http_status: int, builtin: type[Exception]
) -> None:
    assert (error.exit_code, error.http_status) == (exit_code, http_status)
    assert issubclass(error, PoiseError)
    assert issubclass(error, builtin)


def test_validation_error_when_raised_by_a_value_type_then_caught_as_value_error() -> None:
    with pytest.raises(ValueError, match="cash cannot be negative"):
        Account("ACC-1", "HH-1", Registration.TAXABLE, cash=Decimal("-1"))
