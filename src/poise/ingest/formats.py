"""The canonical file formats, one :class:`FileFormat` for each kind of entity.

These definitions are the single source of what a file may hold: the parser, the
validator, the store's bulk loader and ``docs/formats.md`` all follow them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from poise.domain.accounts import Registration
from poise.domain.clients import RiskTolerance
from poise.domain.models import TargetKind
from poise.domain.securities import SecurityKind, TradeUnit
from poise.domain.transactions import CashFlowKind, TxnKind

__all__ = [
    "ACCEPTS",
    "DECIMAL_PLACES",
    "FORMATS",
    "ID_LENGTH",
    "TEXT_LENGTH",
    "WHOLE_DIGITS",
    "Column",
    "ColumnType",
    "FileFormat",
    "ParquetType",
    "format_for",
]


class ColumnType(enum.Enum):
    TEXT = "text"
    DECIMAL = "decimal"  # any sign
    NON_NEGATIVE = "non-negative decimal"
    POSITIVE = "positive decimal"
    RATE = "rate between 0 and 1"
    INTEGER = "whole number"
    DATE = "date (YYYY-MM-DD)"
    DATETIME = "time (YYYY-MM-DDTHH:MM:SS±HH:MM, or a date for midnight UTC)"
    BOOLEAN = "true/false"
    CHOICE = "one of a fixed set"
    LIST = "list separated by ';'"
    RELIEF = "lots relieved, LOT:QUANTITY separated by ';'"


DECIMAL_TYPES = frozenset(
    {ColumnType.DECIMAL, ColumnType.NON_NEGATIVE, ColumnType.POSITIVE, ColumnType.RATE}
)
TEXT_TYPES = frozenset({ColumnType.TEXT, ColumnType.LIST, ColumnType.RELIEF})

# The longest value, in characters, of an identifier and of any other text or list: an
# id is a key of the store (64 characters), other text is bounded so that a runaway
# cell (a whole file pasted into one field) is quarantined instead of stored.
ID_LENGTH = 64
TEXT_LENGTH = 10_000

# A decimal has at most this many digits before its point and after it (leading zeros
# and trailing zeros after the point do not count): amounts stay exact within the
# 38 digits poise computes with, and fit every database.
WHOLE_DIGITS = 18
DECIMAL_PLACES = 18


class ParquetType(enum.StrEnum):
    """The kinds of Parquet column poise reads, as its messages name them."""

    TEXT = "text"  # a string column, a binary one holding UTF-8 text, or only nulls
    WHOLE = "whole number"
    DECIMAL = "decimal"
    FLOAT = "floating point"
    DATE = "date"
    TIMESTAMP = "timestamp with time zone"
    NAIVE_TIMESTAMP = "timestamp without time zone"
    BOOLEAN = "boolean"
    LIST = "list"


_P = ParquetType
# The Parquet column types each column type accepts; a column of another type refuses
# the file. No column takes a timestamp without a time zone: poise will not guess one.
ACCEPTS: Mapping[ColumnType, tuple[ParquetType, ...]] = {
    ColumnType.TEXT: (_P.TEXT, _P.WHOLE),
    ColumnType.CHOICE: (_P.TEXT,),
    **dict.fromkeys(DECIMAL_TYPES, (_P.TEXT, _P.WHOLE, _P.DECIMAL, _P.FLOAT)),
    ColumnType.INTEGER: (_P.TEXT, _P.WHOLE),
    ColumnType.DATE: (_P.TEXT, _P.DATE),
    ColumnType.DATETIME: (_P.TEXT, _P.DATE, _P.TIMESTAMP),
    ColumnType.BOOLEAN: (_P.TEXT, _P.BOOLEAN, _P.WHOLE),
    ColumnType.LIST: (_P.TEXT, _P.LIST),
    ColumnType.RELIEF: (_P.TEXT, _P.LIST),
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a format.

    ``ref`` names the kind whose key this column (or each item of a list) must match;
    ``not_future`` forbids dates after the day of the load; ``max_length`` bounds a
    text column's characters (by default :data:`TEXT_LENGTH`).
    """

    name: str
    type: ColumnType = ColumnType.TEXT
    required: bool = False
    default: str | None = None
    choices: tuple[str, ...] = ()
    ref: str | None = None
    not_future: bool = False
    doc: str = ""
    max_length: int | None = None

    @property
    def length_limit(self) -> int | None:
        """The most characters a cell of this column may hold (None: not text)."""
        if self.type not in TEXT_TYPES:
            return None
        return self.max_length if self.max_length is not None else TEXT_LENGTH


@dataclass(frozen=True, slots=True)
class FileFormat:
    """A kind of file: its columns, natural key, table and place in the load order.

    ``rank`` orders a multi-file load so that what a row refers to is loaded first.
    ``group`` names a column whose value groups rows into one unit (a model's rows):
    the group is valid or quarantined as a whole, and a new load of a group replaces
    every row of it.
    """

    kind: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    rank: int
    doc: str
    group: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> frozenset[str]:
        return frozenset(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _choices(kind: type[enum.StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in kind)


def _id(name: str, doc: str, *, ref: str | None = None, required: bool = True) -> Column:
    return Column(name, ColumnType.TEXT, required=required, ref=ref, doc=doc, max_length=ID_LENGTH)


SECURITIES = FileFormat(
    kind="securities",
    table="securities",
    rank=0,
    key=("security_id",),
    doc="The security master: every security a lot, price or model may name.",
    columns=(
        _id("security_id", "stable id from the source system (CUSIP, ISIN or your own)"),
        Column("symbol", required=True, doc="ticker", max_length=32),
        Column("name", required=True),
        Column("kind", ColumnType.CHOICE, required=True, choices=_choices(SecurityKind)),
        Column(
            "asset_class",
            required=True,
            doc="e.g. us_equity, intl_equity, fixed_income",
            max_length=ID_LENGTH,
        ),
        Column("sub_class", doc="sub-class or sector"),
        Column("currency", default="USD", doc="ISO 4217 code"),
        Column(
            "trade_unit",
            ColumnType.CHOICE,
            default="whole",
            choices=_choices(TradeUnit),
            doc="whole shares, a fraction with a step, or round lots",
        ),
        Column("trade_step", ColumnType.POSITIVE, default="1", doc="fraction step or lot size"),
        Column("tags", ColumnType.LIST, doc="ESG and other tags, e.g. tobacco;fossil_fuels"),
        Column("identity_group", doc="substantially identical group for the wash-sale rule"),
        Column(
            "replacements",
            ColumnType.LIST,
            ref="securities",
            doc="tax-loss-harvest replacement candidates, best first",
        ),
    ),
)

HOUSEHOLDS = FileFormat(
    kind="households",
    table="households",
    rank=2,
    key=("household_id",),
    doc="Households: one taxpayer unit, the scope of the wash-sale rule.",
    columns=(
        _id("household_id", "stable household id"),
        Column("name", required=True),
        Column("advisor", doc="the adviser responsible"),
        _id(
            "model_id",
            "one model across all its accounts (empty: each account to its own)",
            ref="models",
            required=False,
        ),
    ),
)

MODELS = FileFormat(
    kind="models",
    table="model_targets",
    rank=1,
    key=("model_id", "kind", "target_id"),
    group="model_id",
    doc=(
        "Model portfolios, one row per target. A model's security, model and cash"
        " weights add up to exactly 1; asset_class rows carry bands only."
    ),
    columns=(
        _id("model_id", "stable model id"),
        Column("model_name", doc="display name (the first non-empty one counts)"),
        Column("kind", ColumnType.CHOICE, required=True, choices=_choices(TargetKind)),
        Column(
            "target_id",
            doc="security id, model id (a sleeve) or asset class; empty for cash",
            max_length=ID_LENGTH,
        ),
        Column("weight", ColumnType.RATE, default="0", doc="target weight, 0.25 is 25%"),
        Column("band_abs", ColumnType.NON_NEGATIVE, doc="absolute band in weight points"),
        Column("band_rel", ColumnType.NON_NEGATIVE, doc="relative band, fraction of target"),
    ),
)

ACCOUNTS = FileFormat(
    kind="accounts",
    table="accounts",
    rank=3,
    key=("account_id",),
    doc="Accounts, each in one household, with its model, cash and restrictions.",
    columns=(
        _id("account_id", "account number at the custodian"),
        _id("household_id", "its household", ref="households"),
        Column("registration", ColumnType.CHOICE, required=True, choices=_choices(Registration)),
        Column("custodian"),
        Column("name"),
        _id("model_id", "assigned model", ref="models", required=False),
        Column("cash", ColumnType.NON_NEGATIVE, default="0", doc="cash balance"),
        Column("reserve_amount", ColumnType.NON_NEGATIVE, default="0", doc="cash to keep"),
        Column("reserve_pct", ColumnType.RATE, default="0", doc="cash to keep, of value"),
        Column("do_not_buy", ColumnType.LIST, ref="securities"),
        Column("do_not_sell", ColumnType.LIST, ref="securities"),
        Column("excluded_tags", ColumnType.LIST),
        Column("st_rate", ColumnType.RATE, default="0", doc="short-term federal rate"),
        Column("lt_rate", ColumnType.RATE, default="0", doc="long-term federal rate"),
        Column("state_rate", ColumnType.RATE, default="0"),
        Column("harvest", ColumnType.BOOLEAN, default="false", doc="loss harvesting on"),
        Column("band_abs", ColumnType.NON_NEGATIVE, doc="absolute band override"),
        Column("band_rel", ColumnType.NON_NEGATIVE, doc="relative band override"),
        Column("min_trade", ColumnType.NON_NEGATIVE, doc="smallest trade override, dollars"),
        Column("min_trade_pct", ColumnType.RATE, doc="smallest trade override, of value"),
        Column(
            "cross_consent",
            ColumnType.BOOLEAN,
            default="false",
            doc="consented to cross trades with the firm's other accounts",
        ),
        Column(
            "relief_method",
            ColumnType.CHOICE,
            choices=("fifo", "lifo", "hifo", "tax_min"),
            doc="how a sale not relieved as it named its lots is relieved",
        ),
    ),
)

CLIENTS = FileFormat(
    kind="clients",
    table="clients",
    rank=4,
    key=("client_id",),
    doc="Client profiles: risk, horizon, goals, preferences and the model they map to.",
    columns=(
        _id("client_id", "stable client id"),
        _id("household_id", "the client's household", ref="households"),
        Column("name", required=True),
        Column("risk_tolerance", ColumnType.CHOICE, required=True, choices=_choices(RiskTolerance)),
        Column("horizon_years", ColumnType.INTEGER, required=True),
        _id("model_id", "the model the profile maps to", ref="models", required=False),
        Column("goals", ColumnType.LIST),
        Column("exclusions", ColumnType.LIST, ref="securities", doc="securities not to hold"),
        Column("esg", ColumnType.LIST, doc="tags the client excludes"),
    ),
)

LOTS = FileFormat(
    kind="lots",
    table="lots",
    rank=5,
    key=("account_id", "lot_id"),
    doc="Open tax lots.",
    columns=(
        _id("account_id", "the account holding the lot", ref="accounts"),
        _id("lot_id", "lot id, unique within the account"),
        _id("security_id", "the security", ref="securities"),
        Column("quantity", ColumnType.NON_NEGATIVE, required=True, doc="shares"),
        Column("cost_basis", ColumnType.NON_NEGATIVE, required=True, doc="total cost"),
        Column("acquired", ColumnType.DATE, required=True, not_future=True),
        Column("adjusted_basis", ColumnType.NON_NEGATIVE, doc="basis after wash sales"),
        Column("holding_start", ColumnType.DATE, not_future=True, doc="adjusted start"),
        Column("disallowed_loss", ColumnType.NON_NEGATIVE, default="0"),
    ),
)

TRANSACTIONS = FileFormat(
    kind="transactions",
    table="transactions",
    rank=6,
    key=("account_id", "txn_id"),
    doc="Booked transactions. Amount and quantity are positive; the kind gives direction.",
    columns=(
        _id("account_id", "the account", ref="accounts"),
        _id("txn_id", "transaction id, unique within the account"),
        Column("kind", ColumnType.CHOICE, required=True, choices=_choices(TxnKind)),
        Column("trade_date", ColumnType.DATE, required=True, not_future=True),
        Column("settle_date", ColumnType.DATE, required=True),
        _id(
            "security_id",
            "the security, for buys, sells, dividends, splits",
            ref="securities",
            required=False,
        ),
        Column("quantity", ColumnType.NON_NEGATIVE, default="0"),
        Column("amount", ColumnType.NON_NEGATIVE, default="0"),
        Column("lots", ColumnType.RELIEF, doc="for a sale: the lots relieved"),
        Column("description"),
    ),
)

PRICES = FileFormat(
    kind="prices",
    table="prices",
    rank=7,
    key=("security_id", "as_of", "source"),
    doc="Prices with the time they were taken and their source.",
    columns=(
        _id("security_id", "the security", ref="securities"),
        Column("as_of", ColumnType.DATETIME, required=True, not_future=True),
        Column("price", ColumnType.POSITIVE, required=True),
        Column("source", default="", doc="where the price came from", max_length=ID_LENGTH),
    ),
)

CASH_FLOWS = FileFormat(
    kind="cash_flows",
    table="cash_flows",
    rank=8,
    key=("account_id", "flow_id"),
    doc="Deposits and withdrawals that clients have asked for and that are still pending.",
    columns=(
        _id("account_id", "the account", ref="accounts"),
        _id("flow_id", "request id, unique within the account"),
        Column("kind", ColumnType.CHOICE, required=True, choices=_choices(CashFlowKind)),
        Column("amount", ColumnType.POSITIVE, required=True),
        Column("requested", ColumnType.DATE, required=True, not_future=True),
        Column("due", ColumnType.DATE),
    ),
)

POSITIONS = FileFormat(
    kind="positions",
    table="positions",
    rank=9,
    key=("account_id", "as_of", "security_id"),
    doc=(
        "The custodian's positions, a snapshot per account and day. The monitor holds an"
        " account whose latest snapshot disagrees with its lots."
    ),
    columns=(
        _id("account_id", "the account", ref="accounts"),
        Column("as_of", ColumnType.DATE, required=True, not_future=True, doc="snapshot day"),
        _id(
            "security_id",
            "as the custodian names it; a security the master does not know is loaded,"
            " and holds the account",
        ),
        Column("quantity", ColumnType.DECIMAL, required=True, doc="shares; negative if short"),
        Column("price", ColumnType.POSITIVE, doc="the custodian's price that day"),
    ),
)

CASH = FileFormat(
    kind="cash",
    table="custodian_cash",
    rank=11,
    key=("account_id", "as_of"),
    doc=(
        "The custodian's cash, a snapshot per account and day. `poise reconcile` compares"
        " it with the books' cash."
    ),
    columns=(
        _id("account_id", "the account", ref="accounts"),
        Column("as_of", ColumnType.DATE, required=True, not_future=True, doc="snapshot day"),
        Column("cash", ColumnType.DECIMAL, required=True, doc="settled cash; negative if owed"),
        Column("trade_date_cash", ColumnType.DECIMAL, doc="cash on trade date, where given"),
    ),
)

BREAKS = FileFormat(
    kind="breaks",
    table="breaks",
    rank=10,
    key=("account_id", "break_id"),
    doc=(
        "Reconciliation breaks from the firm's reconciliation: an account with an open"
        " break is not traded. Send the row again with `closed` to close it."
    ),
    columns=(
        _id("account_id", "the account", ref="accounts"),
        _id("break_id", "break id, unique within the account"),
        Column("opened", ColumnType.DATE, required=True, not_future=True),
        Column("closed", ColumnType.DATE, not_future=True, doc="empty while the break is open"),
        Column("description"),
    ),
)

FORMATS: Mapping[str, FileFormat] = {
    f.kind: f
    for f in sorted(
        (
            SECURITIES,
            HOUSEHOLDS,
            MODELS,
            ACCOUNTS,
            CLIENTS,
            LOTS,
            TRANSACTIONS,
            PRICES,
            CASH_FLOWS,
            POSITIONS,
            BREAKS,
            CASH,
        ),
        key=lambda f: f.rank,
    )
}


def format_for(columns: list[str]) -> FileFormat | None:
    """The one format whose required columns are all present and that knows every column."""
    present = set(columns)
    matches = [f for f in FORMATS.values() if f.required <= present <= set(f.names)]
    return matches[0] if len(matches) == 1 else None
