#!/usr/bin/env python3
"""Check poise's audit proofs with nothing but the proof file and the firm's public key.

This file stands alone: it needs Python 3.11 or later and the ``cryptography`` package
(for Ed25519), nothing of poise and no database. Copy it anywhere and run::

    python verifier.py inclusion proof.json firm-audit-key.pub.pem
    python verifier.py consistency consistency.json firm-audit-key.pub.pem
    python verifier.py export examiner.json firm-audit-key.pub.pem

``inclusion`` checks that an entry, exactly as written in the proof, is entry ``index``
of the ledger whose head (size, root, time) the firm signed: its fields give its leaf
hash, the audit path leads from it to the signed root (RFC 9162 §2.1.3.2), and the
signature holds. ``consistency`` checks that the older signed head is the start of the
newer one — nothing before it was changed, removed or reordered (RFC 9162 §2.1.4.2).
``export`` checks every entry of an examiner's file to its latest checkpoint, every
checkpoint's signature, and each checkpoint's consistency with the latest.

It prints one line per check and ``verified`` at the end, exiting 0; or the first
failure, exiting 1 (2 for a file it cannot read). The public key must be the one the
firm gave you — not one read from the file being checked.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEADER = "poise-audit-checkpoint/v1"
FIELDS = (
    "action",
    "actor",
    "at",
    "corrects",
    "data_hash",
    "prev_hash",
    "reason",
    "seq",
    "subject",
)


class VerifyError(Exception):
    """A check that does not hold."""


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hash(entry: dict[str, Any]) -> bytes:
    """SHA-256(0x00 || the canonical JSON of the entry's fields)."""
    if sorted(entry) != list(FIELDS):
        raise VerifyError(f"the entry's fields are {sorted(entry)}, not {list(FIELDS)}")
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(b"\x00" + text.encode("utf-8")).digest()


def inclusion_root(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root the path leads to, or None where the steps fail."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def consistent(first: int, second: int, first_hash: bytes, second_hash: bytes,
               path: list[bytes]) -> bool:  # fmt: skip
    """RFC 9162 §2.1.4.2; equal sizes need an empty path and equal roots, and the empty
    tree is the start of every tree."""
    if first < 0 or second < first:
        return False
    if first == second:
        return not path and first_hash == second_hash
    if first == 0:
        return not path and first_hash == hashlib.sha256(b"").digest()
    if not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def _hex(value: Any, what: str, length: int | None = 32) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except (TypeError, ValueError):
        raise VerifyError(f"{what} is not hex") from None
    if length is not None and len(raw) != length:
        raise VerifyError(f"{what} is {len(raw)} bytes, not {length}")
    return raw


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def check_checkpoint(point: dict[str, Any], public: Ed25519PublicKey) -> tuple[int, bytes]:
    """The checkpoint's size and root, once its signature holds under ``public``."""
    number = point.get("number")
    size = point.get("tree_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise VerifyError(f"checkpoint {number}: its tree size is not a count")
    root = _hex(point.get("root_hash"), f"checkpoint {number}'s root")
    at = point.get("at")
    if not isinstance(at, str) or not at.endswith("Z"):
        raise VerifyError(f"checkpoint {number}: its time is not a UTC time")
    try:
        datetime.fromisoformat(at[:-1])
    except ValueError:
        raise VerifyError(f"checkpoint {number}: its time is not a UTC time") from None
    if point.get("key_id") != key_id(public):
        raise VerifyError(f"checkpoint {number} was signed by another key than the one given")
    message = f"{HEADER}\n{size}\n{root.hex()}\n{at}\n".encode("ascii")
    try:
        public.verify(_hex(point.get("signature"), "the signature", 64), message)
    except InvalidSignature:
        raise VerifyError(f"checkpoint {number}: the signature does not hold") from None
    return size, root


def check_entry(item: dict[str, Any], index: int, size: int, root: bytes) -> None:
    """An entry (with its leaf hash and audit path) is entry ``index`` of the tree."""
    entry = item.get("entry")
    if not isinstance(entry, dict) or entry.get("seq") != index:
        raise VerifyError(f"the proof's entry is not entry {index}")
    leaf = leaf_hash(entry)
    if item.get("leaf_hash") is not None and item["leaf_hash"] != leaf.hex():
        raise VerifyError(f"entry {index}: its fields do not give the leaf hash stated")
    path = item.get("path")
    if not isinstance(path, list):
        raise VerifyError(f"entry {index}: the audit path is missing")
    steps = [_hex(p, f"entry {index}'s path step {n}") for n, p in enumerate(path)]
    if inclusion_root(index, size, leaf, steps) != root:
        raise VerifyError(f"entry {index} is not in the signed tree of {size} entries")


def inclusion(doc: dict[str, Any], public: Ed25519PublicKey) -> list[str]:
    size, root = check_checkpoint(doc.get("checkpoint") or {}, public)
    if doc.get("tree_size") != size:
        raise VerifyError(f"the proof is for {doc.get('tree_size')} entries, the checkpoint {size}")
    index = doc.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise VerifyError("the proof names no entry index")
    check_entry(doc, index, size, root)
    return [
        f"checkpoint {doc['checkpoint'].get('number')}: {size} entries, signature holds",
        f"entry {index} ({doc['entry'].get('action')}, {doc['entry'].get('at')}) is in it",
    ]


def consistency(doc: dict[str, Any], public: Ed25519PublicKey) -> list[str]:
    old, new = doc.get("old") or {}, doc.get("new") or {}
    old_size, old_root = check_checkpoint(old, public)
    new_size, new_root = check_checkpoint(new, public)
    path = doc.get("path")
    if not isinstance(path, list):
        raise VerifyError("the consistency path is missing")
    steps = [_hex(p, f"path step {n}") for n, p in enumerate(path)]
    if not consistent(old_size, new_size, old_root, new_root, steps):
        raise VerifyError(
            f"checkpoint {old.get('number')} ({old_size} entries) is not the start of"
            f" checkpoint {new.get('number')} ({new_size} entries)"
        )
    return [
        f"checkpoints {old.get('number')} and {new.get('number')}: signatures hold",
        f"the first {old_size} entries are unchanged in the {new_size} of the later one",
    ]


def export(doc: dict[str, Any], public: Ed25519PublicKey) -> list[str]:
    size, root = check_checkpoint(doc.get("checkpoint") or {}, public)
    lines = [f"latest checkpoint {doc['checkpoint'].get('number')}: {size} entries"]
    for point in doc.get("checkpoints") or []:
        old_size, old_root = check_checkpoint(point, public)
        steps = [_hex(p, "a consistency step") for p in point.get("consistency") or []]
        if not consistent(old_size, size, old_root, root, steps):
            raise VerifyError(f"checkpoint {point.get('number')} is not the start of the latest")
    lines.append(f"{len(doc.get('checkpoints') or [])} checkpoints consistent with it")
    items = doc.get("entries") or []
    for item in items:
        seq = (item.get("entry") or {}).get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise VerifyError("an entry has no seq")
        check_entry(item, seq, size, root)
    lines.append(f"{len(items)} entries in the signed tree")
    return lines


CHECKS = {"inclusion": inclusion, "consistency": consistency, "export": export}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in CHECKS:
        sys.stderr.write(
            "usage: python verifier.py inclusion|consistency|export PROOF.json PUBLIC_KEY.pem\n"
        )
        return 2
    what, proof_file, key_file = argv
    try:
        doc = json.loads(Path(proof_file).read_text(encoding="utf-8"))
        public = serialization.load_pem_public_key(Path(key_file).read_bytes())
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"cannot read: {exc}\n")
        return 2
    if not isinstance(public, Ed25519PublicKey):
        sys.stderr.write(f"{key_file} is not an Ed25519 public key\n")
        return 2
    if not isinstance(doc, dict) or doc.get("kind") != f"poise-audit-{what}/v1":
        kind = doc.get("kind") if isinstance(doc, dict) else None
        sys.stderr.write(f"{proof_file} is not a poise {what} proof (its kind: {kind})\n")
        return 2
    try:
        lines = CHECKS[what](doc, public)
    except VerifyError as exc:
        sys.stdout.write(f"FAILED: {exc}\n")
        return 1
    sys.stdout.write("".join(f"ok: {line}\n" for line in lines) + "verified\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
