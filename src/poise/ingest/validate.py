"""Check every row of a table against its format, vectorised; say why a row fails.

:func:`validate` takes the text cells of a file and returns a :class:`Batch`: the
valid rows with typed, canonical values (ready to load), and a reason for every row
that is not valid, quoting its line. It is pure: what other data already exists (the
keys a row may refer to) and the day of the load are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from poise.domain.accounts import Registration
from poise.domain.errors import FormatError
from poise.domain.transactions import MOVES_SHARES, NEEDS_SECURITY, TxnKind
from poise.ingest.formats import (
    ACCEPTS,
    DECIMAL_PLACES,
    DECIMAL_TYPES,
    WHOLE_DIGITS,
    Column,
    ColumnType,
    FileFormat,
)
from poise.ingest.parse import LINE, RAW, RawTable, Reject

__all__ = ["Batch", "Reject", "check_types", "validate"]

Check = tuple[pl.Expr, pl.Expr]  # (row is bad, reason)

# Digits are ASCII digits only ([0-9], never \d, which also matches Arabic-Indic or
# full-width digits). A decimal has at most WHOLE_DIGITS before its point and
# DECIMAL_PLACES after it, not counting leading zeros or trailing zeros after the point.
ANY_DECIMAL_RE = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
DECIMAL_RE = (
    rf"^[+-]?(0*[0-9]{{1,{WHOLE_DIGITS}}}(\.[0-9]{{0,{DECIMAL_PLACES}}}0*)?"
    rf"|\.[0-9]{{1,{DECIMAL_PLACES}}}0*)$"
)
INTEGER_RE = r"^\+?[0-9]+$"
OTHER_DIGIT = r"[\d--0-9]"  # a digit of another script: Arabic-Indic, full-width, …
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
RELIEF_ITEM = r"[^:;]+:([0-9]+(\.[0-9]*)?|\.[0-9]+)"
RELIEF_RE = rf"^{RELIEF_ITEM}(;{RELIEF_ITEM})*;?$"
TRUE = ("true", "yes", "y", "1")
FALSE = ("false", "no", "n", "0")
EARLIEST = date(1900, 1, 1)


@dataclass(frozen=True, slots=True)
class Batch:
    """The outcome of validating one file."""

    format: FileFormat
    rows: pl.DataFrame  # valid rows: the format's columns, typed and canonical, plus _line
    rejects: tuple[Reject, ...]

    @property
    def read(self) -> int:
        return self.rows.height + len(self.rejects)


def _t(name: str) -> str:
    """The name of a column's typed twin while validating."""
    return f"{name}\x1ft"


def _canonical_decimal(expr: pl.Expr, *, unusual: bool) -> pl.Expr:
    """Plain decimal text: no plus sign, no leading zeros, no trailing zeros after the
    point, no bare point, no negative zero — ``+7.50`` → ``7.5``, ``1500.00`` → ``1500``.

    It runs on every number of every row, so the common forms (a sign, trailing
    zeros) take one cheap pass; the rare ones (``.5``, ``100.``, ``007``, ``-0``) take
    a few more, only in a column where they occur (``unusual``).
    """
    text = expr.str.strip_prefix("+")
    if unusual:
        text = text.str.replace(r"^(-?)\.", "${1}0.").str.replace(r"^(-?)0+([0-9])", "${1}${2}")
    text = text.str.replace(r"(\.[0-9]*?[1-9])0+$|\.0+$", "${1}")
    if unusual:
        text = text.str.replace(r"\.$", "").str.replace(r"^-0$", "0")
    return text


UNUSUAL_DECIMAL = r"^[+-]?\.|\.$|^[+-]?0[0-9]|^-0*\.?0*$"


def _unusual_decimals(frame: pl.DataFrame, fmt: FileFormat) -> frozenset[str]:
    """The decimal columns of ``frame`` holding a rare form that needs the longer canonical pass."""
    names = [c.name for c in fmt.columns if c.type in DECIMAL_TYPES and c.name in frame.columns]
    if not names:
        return frozenset()
    found = frame.select(pl.col(n).str.contains(UNUSUAL_DECIMAL).any() for n in names).row(0)
    return frozenset(n for n, hit in zip(names, found, strict=True) if hit)


def _typed(column: Column, *, unusual: bool = False) -> pl.Expr:
    """The column's value in its type (null where the text does not parse)."""
    col = pl.col(column.name)
    value: pl.Expr
    match column.type:
        case t if t in DECIMAL_TYPES:
            value = pl.when(col.str.contains(DECIMAL_RE)).then(
                _canonical_decimal(col, unusual=unusual)
            )
        case ColumnType.INTEGER:
            value = pl.when(col.str.contains(INTEGER_RE)).then(
                col.str.replace(r"^\+", "").cast(pl.Int64, strict=False)
            )
        case ColumnType.DATE:
            value = pl.when(col.str.contains(DATE_RE)).then(
                col.str.to_date("%Y-%m-%d", strict=False)
            )
        case ColumnType.DATETIME:
            as_date = (
                col.str.to_date("%Y-%m-%d", strict=False)
                .cast(pl.Datetime("us"))
                .dt.replace_time_zone("UTC")
            )
            as_time = col.str.replace(r"Z$", "+00:00").str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_zone="UTC", time_unit="us"
            )
            value = pl.when(col.str.contains(DATE_RE)).then(as_date).otherwise(as_time)
        case ColumnType.BOOLEAN:
            low = col.str.to_lowercase()
            value = (
                pl.when(low.is_in(TRUE))
                .then(pl.lit(True))
                .when(low.is_in(FALSE))
                .then(pl.lit(False))
            )
        case ColumnType.CHOICE:
            low = col.str.to_lowercase()
            value = pl.when(low.is_in(column.choices)).then(low)
        case ColumnType.LIST:
            value = (
                col.str.split(";")
                .list.eval(
                    pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != "")
                )
                .list.join(";")
            )
            value = pl.when(value != "").then(value)
        case ColumnType.RELIEF:
            squeezed = col.str.replace_all(r"\s+", "")
            value = pl.when(squeezed.str.contains(RELIEF_RE)).then(squeezed.str.replace(r";$", ""))
        case _:
            value = col
    return value.alias(_t(column.name))


_WHAT = dict.fromkeys(DECIMAL_TYPES, "a number") | {ColumnType.RELIEF: "a list of LOT:QUANTITY"}
NOUN = {
    "securities": "security",
    "households": "household",
    "models": "model",
    "accounts": "account",
}


SHOWN = 40  # a value quoted in a reason is cut to this many characters


def _shown(expr: pl.Expr) -> pl.Expr:
    """A cell's text as a reason quotes it: cut short if it is long."""
    return (
        pl.when(expr.str.len_chars() > SHOWN)
        .then(expr.str.slice(0, SHOWN - 1) + pl.lit("…"))
        .otherwise(expr)
    )


def _short(text: str) -> str:
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _not_a(column: Column, raw: pl.Expr) -> pl.Expr:
    """Why a present cell of ``column`` does not parse."""
    name = column.name
    what = _WHAT.get(column.type, f"a {column.type.value}")
    if column.type is ColumnType.CHOICE:
        what = "one of " + ", ".join(column.choices)
    reason = pl.format(f"{name} '{{}}' is not {what}", _shown(raw))
    if column.type in DECIMAL_TYPES or column.type is ColumnType.INTEGER:
        other_digits = pl.format(f"{name} '{{}}' is not {what}: digits are 0-9 only", _shown(raw))
        reason = pl.when(raw.str.contains(OTHER_DIGIT)).then(other_digits).otherwise(reason)
    if column.type in DECIMAL_TYPES:
        too_long = pl.format(
            f"{name} '{{}}' has more than {WHOLE_DIGITS} digits before the point"
            f" or {DECIMAL_PLACES} after it",
            _shown(raw),
        )
        reason = pl.when(raw.str.contains(ANY_DECIMAL_RE)).then(too_long).otherwise(reason)
    return reason


def _column_checks(column: Column, *, known: Mapping[str, pl.Series], today: date) -> list[Check]:
    name = column.name
    raw, typed = pl.col(name), pl.col(_t(name))
    present = raw.is_not_null()
    checks: list[Check] = []
    if column.required:
        checks.append((raw.is_null(), pl.lit(f"{name} is missing")))
    limit = column.length_limit
    if limit is not None:
        length = raw.str.len_chars()
        checks.append(
            (
                length > limit,
                pl.format(
                    f"{name} '{{}}' is {{}} characters long; at most {limit} are allowed",
                    _shown(raw),
                    length,
                ),
            )
        )
    if column.type not in (ColumnType.TEXT, ColumnType.LIST):  # any text is a list
        checks.append((present & typed.is_null(), _not_a(column, raw)))
    # Exact, on canonical text: a float would round 1.0000000000000001 to 1.
    negative = typed.str.starts_with("-")
    if column.type is ColumnType.NON_NEGATIVE:
        checks.append((negative, pl.format(f"{name} {{}} is negative", typed)))
    elif column.type is ColumnType.POSITIVE:
        checks.append(
            (negative | (typed == "0"), pl.format(f"{name} {{}} must be positive", typed))
        )
    elif column.type is ColumnType.RATE:
        within = (typed == "0") | (typed == "1") | typed.str.starts_with("0.")
        checks.append((~within, pl.format(f"{name} {{}} is not between 0 and 1", typed)))
    elif column.type in (ColumnType.DATE, ColumnType.DATETIME):
        day = typed if column.type is ColumnType.DATE else typed.dt.date()
        checks.append((day < EARLIEST, pl.format(f"{name} {{}} is before 1900", raw)))
        latest = today if column.not_future else date(today.year + 10, 12, 31)
        checks.append((day > latest, pl.format(f"{name} {{}} is in the future", raw)))
    if column.ref is not None:
        keys = known.get(column.ref, pl.Series(dtype=pl.Utf8))
        if column.type is ColumnType.LIST:
            unknown = (
                typed.str.split(";")
                .list.eval(pl.element().filter(~pl.element().is_in(keys.implode())))
                .list.first()
            )
            checks.append(
                (
                    unknown.is_not_null(),
                    pl.format(f"{name}: unknown {NOUN[column.ref]} '{{}}'", _shown(unknown)),
                )
            )
        else:
            checks.append(
                (
                    present & ~raw.is_in(keys.implode()),
                    pl.format(f"{name}: unknown {NOUN[column.ref]} '{{}}'", _shown(raw)),
                )
            )
    return checks


# Rules that relate columns of one row, by kind. Each sees the typed twins.
def _securities_rules() -> list[Check]:
    unit, step = pl.col(_t("trade_unit")), pl.col(_t("trade_step"))
    currency = pl.col(_t("currency"))
    replacements = pl.col(_t("replacements")).str.split(";")
    return [
        (
            (unit == "whole") & (step != "1"),
            pl.lit("trade_step of a whole-share security must be 1"),
        ),
        (
            (unit == "round_lot") & step.str.contains(".", literal=True),
            pl.lit("a round lot is a whole number of shares"),
        ),
        (
            ~currency.str.contains(r"^[A-Z]{3}$"),
            pl.format("currency '{}' is not an ISO 4217 code", _shown(currency)),
        ),
        (
            replacements.list.contains(pl.col("security_id")).fill_null(False),
            pl.lit("a security cannot replace itself"),
        ),
    ]


def _accounts_rules() -> list[Check]:
    taxable = [r.value for r in Registration if r.taxable]
    reg = pl.col(_t("registration"))
    return [
        (
            pl.col(_t("harvest")) & ~reg.is_in(taxable),
            pl.format("loss harvesting needs a taxable account, not {}", reg),
        ),
    ]


def _transactions_rules() -> list[Check]:
    kind = pl.col(_t("kind"))
    no_shares = pl.col(_t("quantity")) == "0"
    return [
        (
            pl.col(_t("settle_date")) < pl.col(_t("trade_date")),
            pl.lit("settle_date is before trade_date"),
        ),
        (
            kind.is_in([k.value for k in NEEDS_SECURITY]) & pl.col("security_id").is_null(),
            pl.format("a {} names a security_id", kind),
        ),
        (
            kind.is_in([k.value for k in MOVES_SHARES]) & no_shares,
            pl.format("a {} needs a quantity", kind),
        ),
        (
            (kind != TxnKind.SELL.value) & pl.col(_t("lots")).is_not_null(),
            pl.lit("only a sell relieves lots"),
        ),
    ]


def _models_rules(known: Mapping[str, pl.Series]) -> list[Check]:
    kind, target = pl.col(_t("kind")), pl.col("target_id")
    weighted = pl.col(_t("weight")) != "0"
    securities = known.get("securities", pl.Series(dtype=pl.Utf8)).implode()
    models = known.get("models", pl.Series(dtype=pl.Utf8)).implode()
    return [
        (
            kind.is_in(["cash", "default"]) & target.is_not_null(),
            pl.format("the {} row takes no target_id", kind),
        ),
        (
            ~kind.is_in(["cash", "default"]) & target.is_null(),
            pl.format("a {} row needs a target_id", kind),
        ),
        (
            (kind == "security") & ~target.is_in(securities),
            pl.format("target_id: unknown security '{}'", _shown(target)),
        ),
        (
            (kind == "model") & ~target.is_in(models),
            pl.format("target_id: unknown model '{}'", _shown(target)),
        ),
        ((kind == "model") & (target == pl.col("model_id")), pl.lit("a model cannot hold itself")),
        (
            kind.is_in(["asset_class", "default"]) & weighted,
            pl.format("an {} row carries bands, not a weight", kind),
        ),
    ]


def _breaks_rules() -> list[Check]:
    return [(pl.col(_t("closed")) < pl.col(_t("opened")), pl.lit("closed is before opened"))]


def _clients_rules() -> list[Check]:
    horizon = pl.col(_t("horizon_years"))
    return [(horizon > 100, pl.format("horizon_years {} is more than 100", horizon))]


def _cash_flows_rules() -> list[Check]:
    return [(pl.col(_t("due")) < pl.col(_t("requested")), pl.lit("due is before requested"))]


ROW_RULES: Mapping[str, Callable[[Mapping[str, pl.Series]], list[Check]]] = {
    "securities": lambda known: _securities_rules(),
    "accounts": lambda known: _accounts_rules(),
    "clients": lambda known: _clients_rules(),
    "breaks": lambda known: _breaks_rules(),
    "transactions": lambda known: _transactions_rules(),
    "models": _models_rules,
    "cash_flows": lambda known: _cash_flows_rules(),
}


def _first_reason(checks: Sequence[Check]) -> pl.Expr:
    """The reason of the first check a row fails, or null."""
    if not checks:
        return pl.lit(None, dtype=pl.Utf8).alias("_reason")
    return pl.coalesce(
        [pl.when(bad.fill_null(False)).then(reason) for bad, reason in checks]
    ).alias("_reason")


def check_types(table: RawTable, fmt: FileFormat, *, name: str) -> None:
    """Refuse a file (Parquet) with a column whose type cannot hold that column's values:
    a date column for a quantity, a list for an account id. A CSV file is all text."""
    for column in fmt.columns:
        found = table.types.get(column.name)
        accepted = ACCEPTS[column.type]
        if found is not None and found not in accepted:
            takes = ", ".join(accepted[:-1]) + f" or {accepted[-1]}" if len(accepted) > 1 else ""
            raise FormatError(
                f"{name}: column {column.name} is of Parquet type {found}, which cannot hold"
                f" its values ({column.name} takes {takes or accepted[0]}); nothing was loaded"
            )


def validate(
    table: RawTable,
    fmt: FileFormat,
    *,
    known: Mapping[str, pl.Series],
    today: date,
) -> Batch:
    """Validate ``table`` as a file of kind ``fmt``.

    ``known`` maps a kind to the keys that already exist (loaded before). A file
    whose rows may refer to its own kind (a model holding a sleeve, a security's
    replacements) may also refer to keys it defines itself, a few rows further down —
    but only to rows that are valid: the check repeats until no row refers to a
    key whose rows were rejected.
    """
    frame = table.frame
    missing = [c.name for c in fmt.columns if c.name not in frame.columns]
    frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias(name) for name in missing)
    frame = frame.with_columns(
        pl.col(c.name).fill_null(pl.lit(c.default)) for c in fmt.columns if c.default is not None
    )
    unusual = _unusual_decimals(frame, fmt)
    frame = frame.with_columns(_typed(c, unusual=c.name in unusual) for c in fmt.columns)

    own = fmt.key[0]
    refers_to_itself = fmt.group is not None or any(c.ref == fmt.kind for c in fmt.columns)
    defined = frame[own].drop_nulls().unique() if refers_to_itself else None
    first: pl.DataFrame | None = None  # the first reason found for each rejected row
    while True:
        with_own = dict(known)
        if defined is not None:
            stored = known.get(fmt.kind, pl.Series(dtype=pl.Utf8))
            with_own[fmt.kind] = pl.concat([stored, defined]).unique()
        checked = _check_rows(frame, fmt, known=with_own, today=today)
        if first is not None:
            checked = (
                checked.join(first, on=LINE, how="left")
                .with_columns(pl.coalesce("_first_reason", "_reason").alias("_reason"))
                .drop("_first_reason")
            )
        if defined is None:
            break
        still = checked.filter(pl.col("_reason").is_null())[own].unique()
        if still.len() == defined.len():
            break
        defined = still
        first = checked.filter(pl.col("_reason").is_not_null()).select(
            LINE, pl.col("_reason").alias("_first_reason")
        )
    frame = checked

    bad = frame.filter(pl.col("_reason").is_not_null())
    rejects = [
        Reject(line, reason, raw)
        for line, reason, raw in bad.select(LINE, "_reason", RAW).iter_rows()
    ]
    rejects.extend(table.rejects)
    rejects.sort(key=lambda r: r.line)
    rows = frame.filter(pl.col("_reason").is_null()).select(
        *(pl.col(_t(c.name)).alias(c.name) for c in fmt.columns), LINE
    )
    # Key columns are never null in the store: an empty key part (the cash row's
    # target) is the empty string.
    rows = rows.with_columns(
        pl.col(k).fill_null("") for k in fmt.key if fmt.column(k).type is ColumnType.TEXT
    )
    return Batch(format=fmt, rows=rows, rejects=tuple(rejects))


def _check_rows(
    frame: pl.DataFrame, fmt: FileFormat, *, known: Mapping[str, pl.Series], today: date
) -> pl.DataFrame:
    """``frame`` with ``_reason``: why each row fails, null for the rows that pass."""
    checks: list[Check] = []
    for column in fmt.columns:
        checks.extend(_column_checks(column, known=known, today=today))
    if fmt.kind in ROW_RULES:
        checks.extend(ROW_RULES[fmt.kind](known))

    # The same natural key twice in one file: the first stands, the others are rejected.
    # Keys are compared as the values they are stored as, not as written: a bare date
    # and midnight UTC, or "Z" and "-05:00" for one instant, are the same time.
    typed_key = [_t(k) for k in fmt.key]
    key = pl.col(typed_key[0]) if len(fmt.key) == 1 else pl.struct(typed_key)
    frame = frame.with_columns(
        pl.any_horizontal([bad.fill_null(False) for bad, _ in checks]).alias("_bad"),
        (~key.is_first_distinct()).alias("_dup"),
    )
    # Most rows are good: reasons are worked out only for the few that are not.
    good = frame.filter(~pl.col("_bad") & ~pl.col("_dup")).with_columns(
        pl.lit(None, dtype=pl.Utf8).alias("_reason")
    )
    bad = frame.filter(pl.col("_bad") | pl.col("_dup"))
    if bad.height:
        firsts = (
            frame.filter(key.is_duplicated())
            .group_by(typed_key)
            .agg(pl.col(LINE).min().alias("_first"))
        )
        bad = (
            bad.join(firsts, on=typed_key, how="left", nulls_equal=True)
            .with_columns(_first_reason(checks))
            .with_columns(
                pl.when(pl.col("_reason").is_null())
                .then(pl.format("the same {} as line {}", pl.lit("/".join(fmt.key)), "_first"))
                .otherwise(pl.col("_reason"))
                .alias("_reason")
            )
            .drop("_first")
        )
        frame = pl.concat([good, bad]).sort(LINE)
    else:
        frame = good
    if fmt.kind == "transactions":
        frame = _check_relief_sums(frame)
    if fmt.group is not None:
        frame = _check_groups(frame, fmt)

    return frame


def _check_relief_sums(frame: pl.DataFrame) -> pl.DataFrame:
    """A sale's relieved lots add up to its quantity, exactly."""
    with_lots = frame.filter(pl.col("_reason").is_null() & pl.col(_t("lots")).is_not_null())
    wrong: dict[int, str] = {}
    for line, lots, quantity in with_lots.select(LINE, _t("lots"), _t("quantity")).iter_rows():
        total = sum((Decimal(item.split(":")[1]) for item in lots.split(";")), Decimal(0))
        if total != Decimal(quantity):
            wrong[line] = f"lots relieve {total} shares but the sale is of {quantity}"
    return _add_reasons(frame, on=LINE, reasons=wrong, dtype=pl.Int64())


def _model_cycles(frame: pl.DataFrame, *, rejected: set[str]) -> dict[str, str]:
    """Models of this file that hold each other in a cycle, with the cycle spelt out.

    A depth-first walk without recursion, each model visited once: a chain of
    thousands of sleeves, or a lattice of models sharing sleeves, costs one pass.
    """
    holds: dict[str, list[str]] = {}
    sleeves = frame.filter(pl.col(_t("kind")) == "model").select("model_id", "target_id")
    for model_id, target in sleeves.iter_rows():
        if model_id not in rejected:
            holds.setdefault(model_id, []).append(target)
    reasons: dict[str, str] = {}
    done: set[str] = set()
    for start in sorted(holds):
        if start in done:
            continue
        path = [start]  # the models being walked, each holding the next
        on_path = {start}
        todo = [iter(holds[start])]
        while todo:
            target = next(todo[-1], None)
            if target is None:
                todo.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif target in on_path:
                cycle = (*path[path.index(target) :], target)
                for member in cycle:
                    reasons.setdefault(
                        member, f"models hold each other: {' → '.join(map(_short, cycle))}"
                    )
            elif target not in done:
                path.append(target)
                on_path.add(target)
                todo.append(iter(holds.get(target, ())))
    return reasons


def _check_groups(frame: pl.DataFrame, fmt: FileFormat) -> pl.DataFrame:
    """A group (a model) stands or falls whole; its weights add up to exactly 1."""
    group = fmt.group
    assert group is not None
    reasons: dict[str, str] = {}
    for key, part in frame.group_by(group, maintain_order=True):
        gid = key[0]
        if gid is None:
            continue
        bad = part.filter(pl.col("_reason").is_not_null())
        if bad.height:
            reasons[gid] = f"{group} {_short(gid)} has an invalid row (line {bad[LINE][0]})"
            continue
        total = sum((Decimal(w) for w in part[_t("weight")].drop_nulls()), Decimal(0))
        if total != 1:
            reasons[gid] = f"weights of {group} {_short(gid)} add up to {total}, not 1"
    if fmt.kind == "models":
        reasons.update(_model_cycles(frame, rejected=set(reasons)))
    return _add_reasons(frame, on=group, reasons=reasons, dtype=pl.Utf8())


def _add_reasons(
    frame: pl.DataFrame, *, on: str, reasons: Mapping[Any, str], dtype: pl.DataType
) -> pl.DataFrame:
    """Give rows a reason by the value of column ``on``, keeping any reason they had."""
    if not reasons:
        return frame
    table = pl.DataFrame(
        {on: list(reasons), "_more": list(reasons.values())}, schema={on: dtype, "_more": pl.Utf8}
    )
    return (
        frame.join(table, on=on, how="left")
        .with_columns(pl.coalesce("_reason", "_more").alias("_reason"))
        .drop("_more")
    )
