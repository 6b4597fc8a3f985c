"""Merkle trees as RFC 9162 (Certificate Transparency version 2.0) defines them, §2.1.

- A leaf's hash is ``SHA-256(0x00 || leaf)``, an inner node's ``SHA-256(0x01 || left ||
  right)``; the tree of no leaves has the hash of the empty string (§2.1.1).
- A tree of ``n > 1`` leaves splits at ``k``, the largest power of two smaller than
  ``n``: its hash is the node of the first ``k`` leaves' tree and the rest's (§2.1.1).
- An inclusion proof is the audit path of §2.1.3.1, checked by the algorithm of
  §2.1.3.2; a consistency proof is the one of §2.1.4.1, checked by §2.1.4.2.

Pure: bytes in, bytes out. Trees are computed level by level over a list of leaf
hashes (pairing neighbours, an odd last node carried up as it is), which is the same
tree as the RFC's recursive definition and fast for a million leaves; proofs are taken
from the same levels (:class:`Tree`). A tree grown leaf by leaf keeps only its right
edge, from which its root at any size is folded (:class:`Frontier`: what verifying
the whole ledger grows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "Tree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()  # MTH({}): the hash of an empty string


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``."""
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def _up(level: Sequence[bytes]) -> list[bytes]:
    """The level above ``level``: neighbours paired, an odd last node carried up."""
    sha = _sha256
    n = len(level)
    above = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, n - 1, 2)]
    if n % 2:
        above.append(level[-1])
    return above


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) of the tree whose leaf hashes are ``leaves``."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        level = _up(level)
    return level[0]


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


class Tree:
    """A tree's every level, built once: its root and any proof in it without hashing
    again. Level ``h``'s node ``i`` is the MTH of leaves ``i·2^h`` up to ``(i+1)·2^h``
    (or the last leaf): every subtree a proof names is one of them."""

    __slots__ = ("levels", "size")

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        levels = [list(leaves)]
        while len(levels[-1]) > 1:
            levels.append(_up(levels[-1]))
        self.levels = levels

    @property
    def root(self) -> bytes:
        return self.levels[-1][0] if self.size else EMPTY_ROOT

    def _node(self, start: int, end: int) -> bytes:
        """MTH of leaves ``start:end``, a span the RFC's recursion reaches (``start`` a
        multiple of a power of two at least ``end - start``)."""
        height = (end - start - 1).bit_length()
        return self.levels[height][start >> height]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[n]) of RFC 9162 §2.1.3.1, from the leaf's sibling upward."""
        n = self.size
        if not 0 <= index < n:
            raise ValueError(f"leaf {index} is not in a tree of {n}")
        spans: list[tuple[int, int]] = []
        start, end, m = 0, n, index
        while end - start > 1:
            k = _split(end - start)
            if m < k:
                spans.append((start + k, end))
                end = start + k
            else:
                spans.append((start, start + k))
                start, m = start + k, m - k
        return [self._node(a, b) for a, b in reversed(spans)]

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """PROOF(m, D[n]) of RFC 9162 §2.1.4.1: that the tree of the first ``old_size``
        leaves is the start of this one (``0 < old_size <= n``; equal sizes: empty)."""
        n = self.size
        if not 0 < old_size <= n:
            raise ValueError(f"no consistency proof from a tree of {old_size} to one of {n}")
        # SUBPROOF(m, D[start:end], whole), unrolled; the siblings found outermost first.
        spans: list[tuple[int, int]] = []
        start, end, m, whole = 0, n, old_size, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                spans.append((start + k, end))
                end = start + k
            else:
                spans.append((start, start + k))
                start, m, whole = start + k, m - k, False
        if not whole:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
            spans.append((start, end))
        return [self._node(a, b) for a, b in reversed(spans)]


class Frontier:
    """The right edge of a tree grown leaf by leaf: the roots of its complete subtrees,
    largest first, from which the root of the tree as it stands is folded (RFC 9162's
    MTH: the largest power of two on the left, the rest on the right)."""

    __slots__ = ("count", "nodes")

    def __init__(self) -> None:
        self.nodes: list[bytes] = []
        self.count = 0

    def add(self, leaf: bytes) -> None:
        nodes = self.nodes
        node = leaf
        count = self.count
        while count & 1:  # a complete subtree of the same size to the left: join it
            node = _sha256(b"\x01" + nodes.pop() + node).digest()
            count >>= 1
        nodes.append(node)
        self.count += 1

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        nodes = self.nodes
        node = nodes[-1]
        for left in reversed(nodes[:-1]):
            node = _sha256(b"\x01" + left + node).digest()
        return node


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``leaves`` (see :class:`Tree`)."""
    return Tree(leaves).inclusion_proof(index)


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """The consistency proof from the first ``old_size`` of ``leaves`` to all of them."""
    return Tree(leaves).consistency_proof(old_size)


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion proof leads to, by RFC 9162 §2.1.3.2 steps 1–4; ``None``
    where the steps fail before the end (a path too long, an index past the tree), or
    ``sn`` is not 0 once the path is spent (a path too short)."""
    if index >= size or index < 0:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], expected_root: bytes
) -> bool:
    """Whether ``path`` proves the leaf hash ``leaf`` is leaf ``index`` of the tree of
    ``size`` leaves whose root is ``expected_root`` (RFC 9162 §2.1.3.2)."""
    return root_from_inclusion(index, size, leaf, path) == expected_root


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Whether ``proof`` shows the tree of ``old_size`` leaves with ``old_root`` is the
    start of the tree of ``new_size`` leaves with ``new_root`` (RFC 9162 §2.1.4.2).

    Between equal sizes the proof must be empty and the roots equal; from the empty
    tree, every tree follows, with an empty proof.
    """
    if old_size < 0 or new_size < old_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    # 1. An empty path fails.
    if not proof:
        return False
    path = list(proof)
    # 2. A first tree of a power of two in size is a node of the second: start from it.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3.
    fn, sn = old_size - 1, new_size - 1
    # 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    # 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7.
    return fr == old_root and sr == new_root and sn == 0
