"""Verify the whole ledger in the store, and name the first place it was tampered with.

One pass over the entries in order of seq, nothing kept but the tree's right edge (the
roots of its complete subtrees, at most one per power of two):

- each entry's seq must be the next (a gap: an entry was deleted);
- its fields must give the leaf hash it was written with (if not: it was edited, or
  another entry was moved into its place);
- its ``prev_hash`` must be the previous entry's leaf hash (if not: the previous entry
  was edited or inserted with its leaf hash made anew, an entry between them deleted,
  or this one moved there — the fault names the two neighbours);
- where the tree reaches a checkpoint's size, its root must be the one signed (if not:
  entries up to it were rewritten, chain and all, since the checkpoint before);

and every checkpoint's signature must hold under the firm's public key (the one it
names, of the firm's keys past and present), the checkpoints
numbered 1, 2, … with sizes that never shrink. The first fault found ends the pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from poise.audit.canonical import at_text, leaf_bytes
from poise.audit.keys import checkpoint_message, key_id, verify_signature
from poise.audit.ledger import Checkpoint, checkpoints
from poise.audit.merkle import Frontier
from poise.store import tables as t

__all__ = ["Fault", "Verified", "verified_json", "verify"]

_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class Fault:
    """Where the ledger first fails to verify, and why, in one line."""

    seq: int | None  # the entry named, if an entry is
    checkpoint: int | None  # the checkpoint named, if one is
    reason: str


@dataclass(frozen=True, slots=True)
class Verified:
    """What a pass over the ledger found."""

    entries: int
    checkpoints: int
    root_hash: str  # of the whole tree as it stands (verified up to the first fault)
    signatures_checked: bool
    fault: Fault | None

    @property
    def ok(self) -> bool:
        return self.fault is None


def verified_json(checked: Verified) -> dict[str, Any]:
    """What a pass found, as ``poise audit verify --json`` prints it and the API and
    the audit page answer it."""
    fault = checked.fault
    return {
        "verified": checked.ok,
        "entries": checked.entries,
        "checkpoints": checked.checkpoints,
        "root_hash": checked.root_hash,
        "signatures_checked": checked.signatures_checked,
        "fault": None
        if fault is None
        else {"seq": fault.seq, "checkpoint": fault.checkpoint, "reason": fault.reason},
    }


_PG_AT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'  # PostgreSQL's to_char of at_text's format


def _at(value: Any) -> str:
    """A stored time as the leaf writes it. SQLite keeps SQLAlchemy's text
    (``2026-12-06 17:33:03.123456``, UTC), taken apart without parsing; PostgreSQL
    writes it as the leaf does (``…T17:33:03.123456Z``); anything else is read as a
    time."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " ":
            return f"{value[:10]}T{value[11:]}Z"
        if len(value) == 27 and value[10] == "T" and value[26] == "Z":
            return value
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return at_text(value if value.tzinfo else value.replace(tzinfo=UTC))
    return str(value)


def _signature_fault(point: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    public = keys.get(point.key_id)
    if public is None:
        known = ", ".join(f"{k[:16]}…" for k in keys)
        return (
            f"checkpoint {point.number} names the key {point.key_id[:16]}…, not the firm's"
            f" ({known})"
        )
    try:
        message = checkpoint_message(
            size=point.tree_size, root=bytes.fromhex(point.root_hash), at=point.at
        )
        signature = bytes.fromhex(point.signature)
    except ValueError:
        return f"checkpoint {point.number} is malformed (its root or signature is not hex)"
    if not verify_signature(public, signature, message):
        return (
            f"checkpoint {point.number}'s signature does not hold: its size, root or time"
            " was changed after it was signed"
        )
    return None


def _checkpoint_faults(
    points: Sequence[Checkpoint], keys: Mapping[str, Ed25519PublicKey] | None
) -> dict[int, str]:
    """Faults of the checkpoints themselves, by number: signatures, numbering, order."""
    faults: dict[int, str] = {}
    before: Checkpoint | None = None
    for expected, point in enumerate(points, start=1):
        if point.number != expected:
            faults.setdefault(
                point.number,
                f"checkpoint {expected} is missing: the checkpoints go from"
                f" {expected - 1} to {point.number}",
            )
        if before is not None and point.tree_size < before.tree_size:
            faults.setdefault(
                point.number,
                f"checkpoint {point.number} signs {point.tree_size} entries, fewer than"
                f" checkpoint {before.number}'s {before.tree_size}",
            )
        if keys is not None:
            found = _signature_fault(point, keys)
            if found is not None:
                faults.setdefault(point.number, found)
        before = point
    return faults


def _keys(
    public: Ed25519PublicKey | Sequence[Ed25519PublicKey] | None,
) -> dict[str, Ed25519PublicKey] | None:
    if public is None:
        return None
    given = [public] if isinstance(public, Ed25519PublicKey) else list(public)
    return {key_id(k): k for k in given}


def _rows(connection: sa.Connection) -> sa.Select[Any]:
    """Every entry's fields as the leaf is built from them, in order of seq."""
    c = t.audit_entries.c
    if connection.dialect.name == "postgresql":  # the server writes the time as the leaf does
        at: Any = sa.func.to_char(sa.func.timezone("UTC", c.at), _PG_AT)
    else:
        at = sa.type_coerce(c.at, sa.String)  # as stored: SQLAlchemy's text
    return sa.select(
        c.seq,
        at,
        c.actor,
        c.action,
        c.subject,
        c.reason,
        c.data_hash,
        c.corrects,
        c.prev_hash,
        c.leaf_hash,
    ).order_by(c.seq)


def verify(  # noqa: PLR0911 - each return is a fault found: the pass ends at the first
    connection: sa.Connection,
    *,
    public: Ed25519PublicKey | Sequence[Ed25519PublicKey] | None,
    progress: Callable[[int, int], None] | None = None,
    every: int = 50_000,
) -> Verified:
    """Verify the ledger (see the module's docstring); ``progress(done, total)`` is
    called every ``every`` entries. ``public`` is the firm's public key, or its keys
    past and present (each checkpoint is checked with the one it names); without it the
    signatures are not checked."""
    total = connection.execute(sa.select(sa.func.count()).select_from(t.audit_entries)).scalar()
    total = int(total or 0)
    points = checkpoints(connection)
    bad_points = _checkpoint_faults(points, _keys(public))
    by_size = sorted(points, key=lambda p: (p.tree_size, p.number))
    waiting = 0  # the next checkpoint (by size) to check
    passed: Checkpoint | None = None  # the last checkpoint whose root held

    def fault(seq: int | None, number: int | None, reason: str) -> Verified:
        return Verified(
            entries=total,
            checkpoints=len(points),
            root_hash=frontier.root().hex(),
            signatures_checked=public is not None,
            fault=Fault(seq, number, reason),
        )

    def check_points(size: int) -> Verified | None:
        nonlocal waiting, passed
        while waiting < len(by_size) and by_size[waiting].tree_size == size:
            point = by_size[waiting]
            waiting += 1
            if point.number in bad_points:
                return fault(None, point.number, bad_points[point.number])
            if frontier.root().hex() != point.root_hash:
                since = passed.tree_size if passed is not None else 0
                return fault(
                    since if since < size else None,
                    point.number,
                    f"checkpoint {point.number} ({size} entries, signed {at_text(point.at)})"
                    f" does not match the ledger: entries {since}..{size - 1} were rewritten"
                    f" since {'checkpoint ' + str(passed.number) if passed else 'the start'},"
                    " their chain made anew",
                )
            passed = point
        return None

    frontier = Frontier()
    found = check_points(0)
    if found is not None:
        return found
    query = _rows(connection)
    expected = 0
    prev = ""
    add = frontier.add
    result = connection.execute(query, execution_options={"yield_per": every})
    for seq, stored_at, actor, action, subject, reason, data, corrects, prev_hash, leaf in result:
        if seq != expected:
            missing = f"entries {expected}..{seq - 1} are" if seq > expected + 1 else "it is"
            return fault(
                expected,
                None,
                f"entry {expected} was deleted: the ledger goes from entry {expected - 1}"
                f" to entry {seq} ({missing} missing)",
            )
        computed = _sha256(
            b"\x00"
            + leaf_bytes(
                seq=seq,
                at=_at(stored_at),
                actor=actor,
                action=action,
                subject=subject,
                reason=reason,
                data_hash=data,
                corrects=corrects,
                prev_hash=prev_hash,
            )
        ).digest()
        if computed.hex() != leaf:
            return fault(
                seq,
                None,
                f"entry {seq} was edited: its fields no longer give the leaf hash it was"
                " written with (or another entry was moved into its place)",
            )
        if prev_hash != prev:
            return fault(
                seq - 1,
                None,
                f"the chain breaks between entries {seq - 1} and {seq}: entry {seq} was"
                f" written after an entry whose leaf hash was {prev_hash[:16]}…, but entry"
                f" {seq - 1}'s is {prev[:16]}… — entry {seq - 1} was edited or inserted, an"
                f" entry between them deleted, or entry {seq} moved there",
            )
        add(computed)
        prev = leaf
        expected += 1
        if waiting < len(by_size) and by_size[waiting].tree_size == expected:
            found = check_points(expected)
            if found is not None:
                return found
        if progress is not None and expected % every == 0:
            progress(expected, total)
    if waiting < len(by_size):
        point = by_size[waiting]
        return fault(
            expected,
            point.number,
            f"checkpoint {point.number} signs {point.tree_size} entries but the ledger holds"
            f" {expected}: entries {expected}..{point.tree_size - 1} were deleted",
        )
    if progress is not None:
        progress(expected, total)
    return Verified(
        entries=expected,
        checkpoints=len(points),
        root_hash=frontier.root().hex(),
        signatures_checked=public is not None,
        fault=None,
    )
