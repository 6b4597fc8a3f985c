"""Checkpoints signed, and the documents that let anyone check the ledger without it:
an inclusion proof, a consistency proof, an examiner's export.

Every document is JSON with a ``kind`` (``poise-audit-inclusion/v1``,
``poise-audit-consistency/v1``, ``poise-audit-export/v1``) and hashes, roots and
signatures in lowercase hex; the stand-alone verifier (:mod:`poise.audit.verifier`)
reads them with nothing but the public key beside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from poise.audit import merkle
from poise.audit.canonical import Entry
from poise.audit.keys import checkpoint_message, key_id, public_pem
from poise.audit.ledger import (
    Checkpoint,
    LedgerError,
    checkpoint,
    checkpoint_json,
    checkpoints,
    entries,
    entry,
    find_checkpoint,
    leaf_hashes,
)
from poise.audit.verify import verify
from poise.domain.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = ["consistency", "export", "inclusion", "inclusion_now", "sign_checkpoint"]

_MADE_OF = (
    "seq",
    "at",
    "actor",
    "action",
    "subject",
    "reason",
    "data_hash",
    "corrects",
    "prev_hash",
)
INCLUSION = "poise-audit-inclusion/v1"
CONSISTENCY = "poise-audit-consistency/v1"
EXPORT = "poise-audit-export/v1"


def sign_checkpoint(
    connection: sa.Connection,
    *,
    key: Ed25519PrivateKey,
    at: datetime | None = None,
    earlier_keys: Sequence[Ed25519PublicKey] = (),
    progress: Callable[[int, int], None] | None = None,
) -> Checkpoint:
    """Verify the whole ledger, then sign and keep its head (size, root, time) in
    ``connection``'s transaction — never a head over a ledger that does not verify.
    Checkpoints signed before the firm changed keys are checked with ``earlier_keys``."""
    public = key.public_key()
    checked = verify(connection, public=[public, *earlier_keys], progress=progress)
    if checked.fault is not None:
        raise LedgerError(f"not signed: {checked.fault.reason}")
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    root = bytes.fromhex(checked.root_hash)
    signature = key.sign(checkpoint_message(size=checked.entries, root=root, at=moment))
    return checkpoint(
        connection,
        tree_size=checked.entries,
        root=root,
        at=moment,
        signature=signature,
        key_id=key_id(public),
    )


def _tree(connection: sa.Connection, point: Checkpoint) -> merkle.Tree:
    """The tree of ``point``'s entries, as stored; a :class:`LedgerError` if its root is
    not the one signed."""
    tree = merkle.Tree(leaf_hashes(connection, tree_size=point.tree_size))
    if tree.root.hex() != point.root_hash:
        raise LedgerError(
            f"the entries no longer give checkpoint {point.number}'s root: run `poise audit verify`"
        )
    return tree


def _entry_json(found: Entry) -> dict[str, Any]:
    return found.fields()


def _unedited(connection: sa.Connection, seq: int) -> Entry:
    """Entry ``seq``, whose fields still give its leaf hash; a :class:`LedgerError` if
    they do not (it was edited)."""
    found = entry(connection, seq=seq)
    if Entry.make(**{k: getattr(found, k) for k in _MADE_OF}).leaf_hash != found.leaf_hash:
        raise LedgerError(
            f"entry {seq} was edited: its fields no longer give its leaf hash — run"
            " `poise audit verify`"
        )
    return found


def _inclusion(found: Entry, tree: merkle.Tree, point: Checkpoint | None) -> dict[str, Any]:
    return {
        "kind": INCLUSION,
        "entry": _entry_json(found),
        "leaf_hash": found.leaf_hash,
        "index": found.seq,
        "tree_size": tree.size,
        "root_hash": tree.root.hex(),
        "path": [node.hex() for node in tree.inclusion_proof(found.seq)],
        "checkpoint": None if point is None else checkpoint_json(point),
    }


def inclusion(connection: sa.Connection, *, seq: int, number: int | None = None) -> dict[str, Any]:
    """An inclusion proof of entry ``seq`` in checkpoint ``number`` (the latest: None)."""
    point = find_checkpoint(connection, number=number)
    if not 0 <= seq < point.tree_size:
        held = f"entries 0..{point.tree_size - 1}" if point.tree_size else "no entries"
        raise NotFoundError(
            f"entry {seq} is not in checkpoint {point.number}, which holds {held}: sign a"
            " later checkpoint (`poise audit checkpoint`)"
        )
    found = _unedited(connection, seq)
    return _inclusion(found, _tree(connection, point), point)


def inclusion_now(connection: sa.Connection, *, seq: int) -> dict[str, Any]:
    """An inclusion proof of entry ``seq`` in the latest checkpoint, if that holds it;
    else in the ledger as it stands now — a tree whose head nobody has signed yet
    (``"checkpoint": null``): it shows where the entry sits, but proves nothing to
    anyone who does not trust the database until a checkpoint holds it."""
    try:
        point: Checkpoint | None = find_checkpoint(connection)
    except NotFoundError:
        point = None
    if point is not None and seq < point.tree_size:
        return inclusion(connection, seq=seq, number=point.number)
    found = _unedited(connection, seq)
    return _inclusion(found, merkle.Tree(leaf_hashes(connection)), None)


def consistency(connection: sa.Connection, *, old: int, new: int) -> dict[str, Any]:
    """A consistency proof from checkpoint ``old`` to checkpoint ``new``."""
    if old > new:
        raise ValidationError(
            f"checkpoint {old} comes after checkpoint {new}: name the older first"
        )
    first = find_checkpoint(connection, number=old)
    second = find_checkpoint(connection, number=new)
    if first.tree_size > second.tree_size:
        raise LedgerError(
            f"checkpoint {old} signs more entries than checkpoint {new}: run `poise audit verify`"
        )
    if first.tree_size == 0:
        path: list[bytes] = []
    else:
        path = _tree(connection, second).consistency_proof(first.tree_size)
    return {
        "kind": CONSISTENCY,
        "old": checkpoint_json(first),
        "new": checkpoint_json(second),
        "path": [node.hex() for node in path],
    }


def export(
    connection: sa.Connection,
    *,
    public: Ed25519PublicKey,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """An examiner's file: the entries between ``start`` and ``end`` that the latest
    checkpoint holds, each with its inclusion proof to it; every checkpoint, with a
    consistency proof from each to the latest; and the firm's public key."""
    latest = find_checkpoint(connection)
    tree = _tree(connection, latest)
    chosen = [e for e in entries(connection, start=start, end=end) if e.seq < latest.tree_size]
    later = sum(1 for _ in entries(connection, start=start, end=end, first=latest.tree_size))
    shown: list[dict[str, Any]] = []
    for done, found in enumerate(chosen, start=1):
        shown.append(
            {
                "entry": _entry_json(found),
                "leaf_hash": found.leaf_hash,
                "path": [node.hex() for node in tree.inclusion_proof(found.seq)],
            }
        )
        if progress is not None and (done % 1000 == 0 or done == len(chosen)):
            progress(done, len(chosen))
    points = [p for p in checkpoints(connection) if p.number <= latest.number]
    return {
        "kind": EXPORT,
        "public_key": public_pem(public),
        "key_id": key_id(public),
        "from": start,
        "to": end,
        "checkpoint": checkpoint_json(latest),
        "checkpoints": [
            {
                **checkpoint_json(p),
                "consistency": [node.hex() for node in tree.consistency_proof(p.tree_size)]
                if p.tree_size
                else [],
            }
            for p in points
        ],
        "entries": shown,
        "not_yet_checkpointed": later,
    }
