"""The demo's custodian: the positions file a custodian would send after a day's
trading, made from what the custodian would know — each account's positions before, the
broker's own record of what it filled (the execution reports it sent, read from its
message store), the firm's allocation instructions (each block's written statement),
and the internal crosses journalled between accounts. Shared out as a custodian shares
an allocated block: pro rata to the instructions, whole shares where every instruction
is whole (else millionths of a share), the odd units to the largest remainders.

``poise reconcile --positions`` then compares it with the books: the demo's books and
its custodian were made apart, so a break would show where they part."""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

__all__ = ["Instruction", "broker_filled", "custodian_positions", "write_positions"]

_MESSAGE = re.compile(rb"8=FIX\.4\.4\x01.*?\x0110=\d{3}\x01", re.S)


@dataclass(frozen=True, slots=True)
class Instruction:
    """An allocation instruction: a block's line for one account."""

    block_id: str
    security_id: str
    side: str  # buy, sell
    block_quantity: Decimal
    account_id: str
    quantity: Decimal


def broker_filled(messages: Sequence[bytes]) -> dict[str, Decimal]:
    """What the broker filled, by ClOrdID: the CumQty (14) of the last execution report
    it sent for each, from the raw messages of its store (any bytes holding them)."""
    filled: dict[str, Decimal] = {}
    for blob in messages:
        for raw in _MESSAGE.findall(blob):
            fields = dict(f.split(b"=", 1) for f in raw.split(b"\x01") if b"=" in f)
            if fields.get(b"35") == b"8" and b"11" in fields and b"14" in fields:
                order = fields[b"11"].decode()
                done = Decimal(fields[b"14"].decode())
                filled[order] = max(filled.get(order, Decimal(0)), done)
    return filled


def custodian_positions(
    before: Mapping[tuple[str, str], Decimal],
    filled_blocks: Mapping[str, Decimal],
    instructions: Sequence[Instruction],
    crosses: Sequence[tuple[str, str, str, Decimal]],
) -> dict[tuple[str, str], Decimal]:
    """Each (account, security)'s shares: ``before``, plus each block's shares filled
    (``filled_blocks``) shared by its ``instructions``, plus the ``crosses`` (account,
    security, side, shares)."""
    after: dict[tuple[str, str], Decimal] = dict(before)
    by_block: dict[str, list[Instruction]] = {}
    for line in instructions:
        by_block.setdefault(line.block_id, []).append(line)
    for block_id, shares in filled_blocks.items():
        lines = sorted(by_block.get(block_id, []), key=lambda x: x.account_id)
        if not lines or shares <= 0:
            continue
        whole = all(x.quantity == x.quantity.to_integral_value() for x in lines)
        unit = Fraction(1) if whole else Fraction(1, 10**6)
        total = Fraction(lines[0].block_quantity)
        exact = [Fraction(x.quantity) * Fraction(shares) / total / unit for x in lines]
        given = [int(e) for e in exact]
        order = sorted(range(len(lines)), key=lambda i: (-(exact[i] - given[i]), i))
        for i in order[: int(Fraction(shares) / unit) - sum(given)]:
            given[i] += 1
        for line, n in zip(lines, given, strict=True):
            share = Fraction(n) * unit
            moved = Decimal(share.numerator) / Decimal(share.denominator)
            key = (line.account_id, line.security_id)
            after[key] = after.get(key, Decimal(0)) + (moved if line.side == "buy" else -moved)
    for account_id, security_id, side, shares in crosses:
        key = (account_id, security_id)
        after[key] = after.get(key, Decimal(0)) + (shares if side == "buy" else -shares)
    return {k: v for k, v in sorted(after.items()) if v != 0}


def write_positions(positions: Mapping[tuple[str, str], Decimal], day: date, folder: Path) -> Path:
    """The custodian's positions file of ``day``, in poise's positions format."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"positions-{day.isoformat()}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["account_id", "as_of", "security_id", "quantity"])
        for (account_id, security_id), quantity in positions.items():
            writer.writerow([account_id, day.isoformat(), security_id, format(quantity, "f")])
    return path
