"""The demo firm's fixed reference data: securities, models, names and tax tables.

Everything here is a constant; the generator draws from these tables with a seeded
random generator, so what varies between seeds is who holds what, never the menu.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from poise.domain.accounts import Registration
from poise.domain.clients import RiskTolerance
from poise.domain.securities import SecurityKind

__all__ = [
    "ACCOUNT_LABELS",
    "ADVISORS",
    "CUSTODIANS",
    "FIRST_NAMES",
    "FUNDS",
    "GOALS",
    "LAST_NAMES",
    "MODELS",
    "OTHER_REGISTRATIONS",
    "RISK_MODEL",
    "STATE_RATES",
    "STOCKS",
    "FundSpec",
    "ModelRow",
    "ModelSpec",
    "PriceRule",
    "StockSpec",
]


@dataclass(frozen=True, slots=True)
class StockSpec:
    """One of the 20 real stocks in the market data (its column name is its symbol)."""

    symbol: str
    name: str
    sector: str  # GICS sector, snake_case
    replacements: tuple[str, ...]
    dividend_yield: Decimal  # a plausible 2022 yield, for the dividend rows
    tags: tuple[str, ...] = ()


# GE is the only industrial in the data set, so it has no same-sector peer: its
# harvest replacement is the total-market fund, which keeps the equity exposure.
STOCKS: tuple[StockSpec, ...] = (
    StockSpec("AAPL", "Apple Inc.", "information_technology", ("MSFT",), Decimal("0.006")),
    StockSpec(
        "AMD",
        "Advanced Micro Devices, Inc.",
        "information_technology",
        ("MSFT", "AAPL"),
        Decimal(0),
    ),
    StockSpec("BAC", "Bank of America Corporation", "financials", ("JPM",), Decimal("0.026")),
    StockSpec("BBY", "Best Buy Co., Inc.", "consumer_discretionary", ("HD",), Decimal("0.043")),
    StockSpec(
        "CVX", "Chevron Corporation", "energy", ("XOM",), Decimal("0.033"), ("fossil_fuels",)
    ),
    StockSpec(
        "GE", "General Electric Company", "industrials", ("VTI",), Decimal("0.004"), ("defense",)
    ),
    StockSpec("HD", "The Home Depot, Inc.", "consumer_discretionary", ("BBY",), Decimal("0.024")),
    StockSpec("JNJ", "Johnson & Johnson", "health_care", ("MRK", "PFE"), Decimal("0.026")),
    StockSpec("JPM", "JPMorgan Chase & Co.", "financials", ("BAC",), Decimal("0.030")),
    StockSpec("KO", "The Coca-Cola Company", "consumer_staples", ("PEP",), Decimal("0.028")),
    StockSpec("LLY", "Eli Lilly and Company", "health_care", ("MRK", "PFE"), Decimal("0.012")),
    StockSpec("MRK", "Merck & Co., Inc.", "health_care", ("PFE", "JNJ"), Decimal("0.027")),
    StockSpec(
        "MSFT", "Microsoft Corporation", "information_technology", ("AAPL",), Decimal("0.009")
    ),
    StockSpec("PEP", "PepsiCo, Inc.", "consumer_staples", ("KO",), Decimal("0.026")),
    StockSpec("PFE", "Pfizer Inc.", "health_care", ("MRK", "JNJ"), Decimal("0.032")),
    StockSpec(
        "PG", "The Procter & Gamble Company", "consumer_staples", ("KO", "PEP"), Decimal("0.025")
    ),
    StockSpec(
        "RRC",
        "Range Resources Corporation",
        "energy",
        ("CVX", "XOM"),
        Decimal("0.003"),
        ("fossil_fuels",),
    ),
    StockSpec(
        "UNH", "UnitedHealth Group Incorporated", "health_care", ("JNJ", "LLY"), Decimal("0.013")
    ),
    StockSpec("WMT", "Walmart Inc.", "consumer_staples", ("PG", "KO"), Decimal("0.016")),
    StockSpec(
        "XOM", "Exxon Mobil Corporation", "energy", ("CVX",), Decimal("0.033"), ("fossil_fuels",)
    ),
)


@dataclass(frozen=True, slots=True)
class PriceRule:
    """How a fund's daily price is made.

    ``index``: the S&P 500 index level divided by ``scale`` (with ``tracking`` > 0, times
    a slowly wandering tracking difference of that size). ``synthetic``: an accrual of
    ``drift`` a year times a slowly mean-reverting wobble of about ``noise``, scaled to end
    at ``end_price``. ``constant``: ``end_price`` every day.
    """

    method: str  # "index", "synthetic" or "constant"
    scale: Decimal = Decimal(1)
    tracking: float = 0.0
    drift: float = 0.0
    noise: float = 0.0
    end_price: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class FundSpec:
    symbol: str
    name: str
    kind: SecurityKind
    asset_class: str
    sub_class: str
    listed: date  # first trading day: no lot predates it
    rule: PriceRule
    dividend_yield: Decimal
    identity_group: str = ""
    replacements: tuple[str, ...] = ()


FUNDS: tuple[FundSpec, ...] = (
    FundSpec(
        "SPY",
        "SPDR S&P 500 ETF Trust",
        SecurityKind.ETF,
        "us_equity",
        "large_blend",
        date(1993, 1, 29),
        PriceRule("index", scale=Decimal(10)),
        Decimal("0.015"),
        identity_group="SP500",
        replacements=("VTI",),
    ),
    FundSpec(
        "VOO",
        "Vanguard S&P 500 ETF",
        SecurityKind.ETF,
        "us_equity",
        "large_blend",
        date(2010, 9, 9),
        PriceRule("index", scale=Decimal("10.9")),
        Decimal("0.015"),
        identity_group="SP500",
        replacements=("VTI",),
    ),
    FundSpec(
        "VTI",
        "Vanguard Total Stock Market ETF",
        SecurityKind.ETF,
        "us_equity",
        "total_market",
        date(2001, 5, 31),
        PriceRule("index", scale=Decimal("20.3"), tracking=0.02),
        Decimal("0.015"),
        identity_group="US-TOTAL",
        replacements=("SPY", "VOO"),
    ),
    FundSpec(
        "BND",
        "Vanguard Total Bond Market ETF",
        SecurityKind.ETF,
        "fixed_income",
        "us_aggregate",
        date(2007, 4, 10),
        PriceRule("synthetic", drift=0.03, noise=0.015, end_price=Decimal("72.40")),
        Decimal("0.025"),
    ),
    FundSpec(
        "VGSH",
        "Vanguard Short-Term Treasury ETF",
        SecurityKind.ETF,
        "fixed_income",
        "short_treasury",
        date(2009, 11, 23),
        PriceRule("synthetic", drift=0.028, noise=0.003, end_price=Decimal("58.10")),
        Decimal("0.015"),
    ),
    FundSpec(
        "VMFXX",
        "Vanguard Federal Money Market Fund",
        SecurityKind.CASH_EQUIVALENT,
        "cash",
        "money_market",
        date(1981, 7, 13),
        PriceRule("constant", end_price=Decimal("1.00")),
        Decimal("0.015"),
    ),
)


@dataclass(frozen=True, slots=True)
class ModelRow:
    kind: str  # a TargetKind value
    target_id: str
    weight: str  # exact decimal text
    band_abs: str = ""
    band_rel: str = ""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    model_id: str
    name: str
    rows: tuple[ModelRow, ...]


def _sec(target: str, weight: str, band_abs: str = "", band_rel: str = "") -> ModelRow:
    return ModelRow("security", target, weight, band_abs, band_rel)


def _cash(weight: str) -> ModelRow:
    return ModelRow("cash", "", weight)


def _class(target: str, band_abs: str, band_rel: str = "") -> ModelRow:
    return ModelRow("asset_class", target, "0", band_abs, band_rel)


# Sleeves first: a model of models names them. Weights are exact and, with the cash
# row, add up to 1 (the tests check it with Decimal).
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        "M-EQUITY-SLEEVE",
        "US Equity Sleeve",
        (
            _sec("SPY", "0.25", band_abs="0.03"),
            _sec("VTI", "0.15", band_abs="0.03"),
            _sec("AAPL", "0.06", band_rel="0.25"),
            _sec("MSFT", "0.06", band_rel="0.25"),
            _sec("UNH", "0.04"),
            _sec("JNJ", "0.04"),
            _sec("JPM", "0.04"),
            _sec("XOM", "0.04"),
            _sec("PG", "0.04"),
            _sec("HD", "0.04"),
            _sec("LLY", "0.04"),
            _sec("KO", "0.03"),
            _sec("PEP", "0.03"),
            _sec("MRK", "0.03"),
            _sec("BAC", "0.03"),
            _sec("CVX", "0.03"),
            _sec("WMT", "0.03"),
            _cash("0.02"),
        ),
    ),
    ModelSpec(
        "M-BOND-SLEEVE",
        "Core Bond Sleeve",
        (
            _sec("BND", "0.70", band_abs="0.05"),
            _sec("VGSH", "0.28", band_abs="0.05"),
            _cash("0.02"),
        ),
    ),
    ModelSpec(
        "M-CORE",
        "Core 70/30 (equity and bond sleeves)",
        (
            ModelRow("model", "M-EQUITY-SLEEVE", "0.70", band_abs="0.05"),
            ModelRow("model", "M-BOND-SLEEVE", "0.30", band_abs="0.05"),
            _cash("0"),
            _class("us_equity", "0.05", "0.10"),
            _class("fixed_income", "0.05", "0.20"),
        ),
    ),
    ModelSpec(
        "M-GROWTH",
        "Growth 85/15",
        (
            _sec("VOO", "0.20", band_abs="0.03"),
            _sec("SPY", "0.10", band_abs="0.03"),
            _sec("VTI", "0.15", band_abs="0.03"),
            _sec("AAPL", "0.06", band_rel="0.25"),
            _sec("MSFT", "0.06", band_rel="0.25"),
            _sec("AMD", "0.03", band_rel="0.30"),
            _sec("UNH", "0.04"),
            _sec("LLY", "0.04"),
            _sec("JPM", "0.04"),
            _sec("HD", "0.04"),
            _sec("BBY", "0.02"),
            _sec("GE", "0.03"),
            _sec("XOM", "0.03"),
            _sec("CVX", "0.02"),
            _sec("BND", "0.08"),
            _sec("VGSH", "0.03"),
            _cash("0.03"),
            _class("us_equity", "0.05"),
            _class("fixed_income", "0.03"),
        ),
    ),
    ModelSpec(
        "M-BALANCED",
        "Balanced 60/40",
        (
            _sec("SPY", "0.25", band_abs="0.03"),
            _sec("VTI", "0.10", band_abs="0.03"),
            _sec("AAPL", "0.04", band_rel="0.25"),
            _sec("MSFT", "0.04", band_rel="0.25"),
            _sec("JNJ", "0.03"),
            _sec("PG", "0.03"),
            _sec("JPM", "0.03"),
            _sec("KO", "0.02"),
            _sec("PEP", "0.02"),
            _sec("MRK", "0.02"),
            _sec("WMT", "0.02"),
            _sec("BND", "0.28", band_abs="0.04"),
            _sec("VGSH", "0.10", band_abs="0.03"),
            _cash("0.02"),
            _class("us_equity", "0.05", "0.10"),
            _class("fixed_income", "0.05", "0.15"),
        ),
    ),
    ModelSpec(
        "M-INCOME",
        "Income 30/70",
        (
            _sec("VOO", "0.15", band_abs="0.03"),
            _sec("JNJ", "0.03"),
            _sec("PG", "0.03"),
            _sec("KO", "0.03"),
            _sec("PEP", "0.02"),
            _sec("XOM", "0.02"),
            _sec("PFE", "0.02"),
            _sec("VMFXX", "0.05"),
            _sec("BND", "0.40", band_abs="0.05"),
            _sec("VGSH", "0.20", band_abs="0.05"),
            _cash("0.05"),
            _class("us_equity", "0.05"),
            _class("fixed_income", "0.05"),
        ),
    ),
)

# The model a risk profile maps to. Roth IRAs of the two growth-minded profiles hold
# the all-equity sleeve instead (the longest-lived, tax-free money takes the risk).
RISK_MODEL: dict[RiskTolerance, str] = {
    RiskTolerance.CONSERVATIVE: "M-INCOME",
    RiskTolerance.MODERATE_CONSERVATIVE: "M-INCOME",
    RiskTolerance.MODERATE: "M-BALANCED",
    RiskTolerance.MODERATE_AGGRESSIVE: "M-CORE",
    RiskTolerance.AGGRESSIVE: "M-GROWTH",
}

# Registrations of a household's second and later accounts, with their weights.
OTHER_REGISTRATIONS: tuple[tuple[Registration, float], ...] = (
    (Registration.TRADITIONAL_IRA, 0.34),
    (Registration.ROTH_IRA, 0.24),
    (Registration.TAXABLE, 0.12),
    (Registration.K401, 0.11),
    (Registration.TRUST, 0.07),
    (Registration.SEP_IRA, 0.04),
    (Registration.JOINT, 0.04),
    (Registration.HSA, 0.04),
)

ACCOUNT_LABELS: dict[Registration, str] = {
    Registration.TAXABLE: "Individual",
    Registration.JOINT: "Joint",
    Registration.TRUST: "Family Trust",
    Registration.TRADITIONAL_IRA: "Traditional IRA",
    Registration.ROTH_IRA: "Roth IRA",
    Registration.SEP_IRA: "SEP IRA",
    Registration.K401: "401(k)",
    Registration.ROTH_401K: "Roth 401(k)",
    Registration.HSA: "HSA",
}

ADVISORS: tuple[str, ...] = (
    "Alex Morgan",
    "Priya Raman",
    "Daniel Okafor",
    "Laura Bennett",
    "Tomás Ortega",
)

CUSTODIANS: tuple[tuple[str, float], ...] = (
    ("Schwab", 0.55),
    ("Fidelity", 0.35),
    ("Pershing", 0.10),
)

FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
    "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa",
    "Anthony", "Betty", "Mark", "Margaret", "Steven", "Sandra", "Andrew", "Ashley",
    "Wei", "Mei", "Raj", "Anita", "Carlos", "Sofia", "Hiroshi", "Yuki",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas",
    "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker",
    "Chen", "Patel", "Kim", "Sato", "Cohen", "Murphy", "O'Brien",
)  # fmt: skip

GOALS: tuple[str, ...] = (
    "retirement",
    "education",
    "wealth_transfer",
    "home_purchase",
    "income",
    "charitable_giving",
    "preservation",
)

# State income tax: no-tax states, flat-rate states and the top California rate.
STATE_RATES: tuple[str, ...] = (
    "0", "0", "0", "0.0307", "0.0495", "0.05", "0.0575", "0.0685", "0.093", "0.093",
)  # fmt: skip
