"""Files read on their own, without a store: a model file and a securities file, in
their canonical formats (docs/formats.md), for a backtest.

The rows go through the same validation as ``poise ingest`` — the same types, rules
and reasons — but nothing is quarantined: a file with a row that fails is refused
whole, with the first rows that failed and why, since a backtest of half a model
would answer a question nobody asked.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from poise.domain.errors import ValidationError
from poise.domain.models import Band, Model, ModelTarget, TargetKind
from poise.domain.securities import Security, SecurityKind, TradeUnit, Trading
from poise.ingest.formats import FORMATS
from poise.ingest.parse import read_table
from poise.ingest.validate import Batch, check_types, validate

__all__ = ["read_models", "read_securities", "stocks"]

SHOWN = 3  # rows of a refused file named in the message


def _batch(data: bytes, *, name: str, kind: str, known: dict[str, pl.Series]) -> Batch:
    fmt = FORMATS[kind]
    table = read_table(data, name=name)
    missing = sorted(fmt.required - set(table.frame.columns))
    if missing:
        raise ValidationError(
            f"{name}: not a {kind} file — it lacks the column(s) {', '.join(missing)}"
            f" (docs/formats.md#{kind})"
        )
    check_types(table, fmt, name=name)
    batch = validate(table, fmt, known=known, today=date.max)
    if batch.rejects:
        shown = "; ".join(f"line {r.line}: {r.reason}" for r in batch.rejects[:SHOWN])
        more = len(batch.rejects) - SHOWN
        raise ValidationError(
            f"{name}: {len(batch.rejects)} row(s) cannot be used — {shown}"
            + (f"; {more} more" if more > 0 else "")
        )
    if batch.rows.is_empty():
        raise ValidationError(f"{name}: no {kind} in the file")
    return batch


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None or text == "" else Decimal(text)


def read_models(
    data: bytes, *, name: str, securities: Collection[str] | None = None
) -> dict[str, Model]:
    """Every model of a models file whose securities are ``securities`` (None: any it
    names — the caller checks that each has prices)."""
    if securities is None:
        frame = read_table(data, name=name).frame
        named = (
            frame.filter(pl.col("kind").str.strip_chars() == "security")["target_id"]
            if {"kind", "target_id"} <= set(frame.columns)
            else pl.Series(dtype=pl.Utf8)
        )
        securities = sorted({s.strip() for s in named.drop_nulls().to_list()})
    known = {"securities": pl.Series(sorted(securities), dtype=pl.Utf8)}
    batch = _batch(data, name=name, kind="models", known=known)
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in batch.rows.iter_rows(named=True):
        rows.setdefault(row["model_id"], []).append(row)
    return {
        model_id: Model(
            model_id=model_id,
            name=next((r["model_name"] for r in group if r["model_name"]), model_id) or model_id,
            targets=tuple(
                ModelTarget(
                    kind=TargetKind(r["kind"]),
                    target_id=r["target_id"] or "",
                    weight=_decimal(r["weight"]) or Decimal(0),
                    band=Band(absolute=_decimal(r["band_abs"]), relative=_decimal(r["band_rel"])),
                )
                for r in group
            ),
        )
        for model_id, group in rows.items()
    }


def read_securities(data: bytes, *, name: str) -> dict[str, Security]:
    """Every security of a securities file."""
    batch = _batch(data, name=name, kind="securities", known={})

    def split(text: str | None) -> tuple[str, ...]:
        return tuple(text.split(";")) if text else ()

    return {
        row["security_id"]: Security(
            security_id=row["security_id"],
            symbol=row["symbol"],
            name=row["name"],
            kind=SecurityKind(row["kind"]),
            asset_class=row["asset_class"],
            sub_class=row["sub_class"] or "",
            currency=row["currency"] or "USD",
            trading=Trading(
                unit=TradeUnit(row["trade_unit"]), step=Decimal(row["trade_step"] or "1")
            ),
            tags=frozenset(split(row["tags"])),
            identity_group=row["identity_group"] or "",
            replacements=split(row["replacements"]),
        )
        for row in batch.rows.iter_rows(named=True)
    }


def stocks(ids: Collection[str]) -> dict[str, Security]:
    """Securities for the columns of a price file given without a securities file: each
    a stock of its own (its own wash-sale identity), traded in whole shares."""
    return {
        s: Security(s, s, s, SecurityKind.STOCK, "us_equity", trading=Trading())
        for s in sorted(ids)
    }
