"""The Merkle tree against RFC 9162's own definitions (§2.1), written here as the RFC
states them — recursively, leaf by leaf — for every tree of 1 to 100 leaves, every leaf
and every pair of sizes; every proof altered in each way an attacker or a bug could
alter it is refused; and the roots and proofs agree with pymerkle, an implementation
nobody here wrote."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from poise.audit import merkle

SIZES = range(1, 101)


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _leaves(n: int) -> list[bytes]:
    """Leaf hashes of entries ``b"entry 0"``, ``b"entry 1"``, …"""
    return [_h(b"\x00" + f"entry {i}".encode()) for i in range(n)]


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, over leaf hashes."""
    n = len(d)
    if n == 0:
        return _h(b"")
    if n == 1:
        return d[0]
    k = _k(n)
    return _h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1."""
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def test_hashes_when_taken_then_they_are_the_rfcs_prefixed_sha256() -> None:
    assert merkle.leaf_hash(b"x") == _h(b"\x00x")
    assert merkle.node_hash(b"a" * 32, b"b" * 32) == _h(b"\x01" + b"a" * 32 + b"b" * 32)
    assert merkle.root([]) == _h(b"") == merkle.EMPTY_ROOT
    assert merkle.Tree([]).root == merkle.EMPTY_ROOT


@pytest.mark.parametrize("n", SIZES)
def test_root_when_built_level_by_level_then_it_is_the_rfcs_mth(n: int) -> None:
    d = _leaves(n)
    assert merkle.root(d) == mth(d)
    assert merkle.Tree(d).root == mth(d)


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_when_proved_for_every_leaf_then_it_is_the_rfcs_path_and_verifies(
    n: int,
) -> None:
    d = _leaves(n)
    tree = merkle.Tree(d)
    top = mth(d)
    for m in range(n):
        proof = tree.inclusion_proof(m)
        assert proof == path(m, d)
        assert merkle.verify_inclusion(m, n, d[m], proof, top)


@pytest.mark.parametrize("n", SIZES)
def test_consistency_when_proved_from_every_smaller_size_then_it_is_the_rfcs_and_verifies(
    n: int,
) -> None:
    d = _leaves(n)
    tree = merkle.Tree(d)
    top = mth(d)
    for m in range(1, n + 1):
        proof = tree.consistency_proof(m)
        assert proof == subproof(m, d, True)
        assert merkle.verify_consistency(m, n, mth(d[:m]), top, proof)


def _flip(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def _inclusion_alterations(
    m: int, n: int, d: list[bytes], proof: list[bytes], top: bytes
) -> list[tuple[str, Callable[[], bool]]]:
    other = _h(b"\x00not an entry")
    cases: list[tuple[str, Callable[[], bool]]] = [
        ("wrong leaf", lambda: merkle.verify_inclusion(m, n, other, proof, top)),
        ("flipped leaf bit", lambda: merkle.verify_inclusion(m, n, _flip(d[m], 7), proof, top)),
        ("wrong root", lambda: merkle.verify_inclusion(m, n, d[m], proof, _flip(top, 0))),
        ("index past tree", lambda: merkle.verify_inclusion(n, n, d[m], proof, top)),
        ("negative index", lambda: merkle.verify_inclusion(-1, n, d[m], proof, top)),
        ("extended", lambda: merkle.verify_inclusion(m, n, d[m], [*proof, other], top)),
        ("extended front", lambda: merkle.verify_inclusion(m, n, d[m], [other, *proof], top)),
    ]
    if n > 1:
        cases += [
            ("wrong index", lambda: merkle.verify_inclusion((m + 1) % n, n, d[m], proof, top)),
            ("truncated", lambda: merkle.verify_inclusion(m, n, d[m], proof[:-1], top)),
            ("first dropped", lambda: merkle.verify_inclusion(m, n, d[m], proof[1:], top)),
            ("another leaf", lambda: merkle.verify_inclusion(m, n, d[(m + 1) % n], proof, top)),
        ]
        for step in range(len(proof)):
            for bit in (0, 131, 255):
                changed = list(proof)
                changed[step] = _flip(changed[step], bit)
                cases.append(
                    (
                        f"bit {bit} of step {step}",
                        lambda c=changed: merkle.verify_inclusion(m, n, d[m], c, top),
                    )
                )
        if len(proof) > 1:
            swapped = [proof[1], proof[0], *proof[2:]]
            if swapped != proof:
                cases.append(
                    ("steps swapped", lambda: merkle.verify_inclusion(m, n, d[m], swapped, top))
                )
    return cases


@pytest.mark.parametrize("n", SIZES)
def test_inclusion_when_the_proof_is_altered_in_any_way_then_it_fails(n: int) -> None:
    d = _leaves(n)
    top = mth(d)
    for m in range(n):
        proof = path(m, d)
        for what, check in _inclusion_alterations(m, n, d, proof, top):
            assert not check(), f"size {n}, leaf {m}: {what} verified"
        for size in (n - 1, n + 1, 2 * n):
            if size > m and sides(m, size) != sides(m, n):
                assert not merkle.verify_inclusion(m, size, d[m], proof, top), (m, n, size)


def sides(m: int, n: int) -> list[bool]:
    """Which side leaf ``m``'s path joins at each step in a tree of ``n`` (RFC 9162's
    recursion): a size is checked by a proof only as far as it changes this — the
    checkpoint signs the size with the root, and the verifier holds a proof to it."""
    if n == 1:
        return []
    k = _k(n)
    return [*sides(m, k), True] if m < k else [*sides(m - k, n - k), False]


@pytest.mark.parametrize("n", SIZES)
def test_consistency_when_the_proof_is_altered_in_any_way_then_it_fails(n: int) -> None:
    d = _leaves(n)
    new = mth(d)
    other = _h(b"\x00not a node")
    for m in range(1, n):
        old = mth(d[:m])
        proof = subproof(m, d, True)

        def ok(
            proof: list[bytes] = proof,
            old_size: int = m,
            new_size: int = n,
            old_root: bytes = old,
            new_root: bytes = new,
        ) -> bool:
            return merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)

        cases: dict[str, bool] = {
            "swapped roots": ok(old_root=new, new_root=old),
            "wrong old root": ok(old_root=_flip(old, 3)),
            "wrong new root": ok(new_root=_flip(new, 250)),
            "truncated": ok(proof=proof[:-1]),
            "first dropped": ok(proof=proof[1:]),
            "extended": ok(proof=[*proof, other]),
            "extended front": ok(proof=[other, *proof]),
            "empty": ok(proof=[]),
            "sizes swapped": ok(old_size=n, new_size=m),
        }
        # another size is told apart where it changes the proof's shape; where it does
        # not, the signed checkpoint, which binds each size to its root, tells it
        for old_size, new_size in ((m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1)):
            if 0 < old_size < new_size and shape(old_size, new_size) != shape(m, n):
                cases[f"sizes {old_size} → {new_size}"] = ok(old_size=old_size, new_size=new_size)
        for step in range(len(proof)):
            for bit in (0, 131, 255):
                changed = list(proof)
                changed[step] = _flip(changed[step], bit)
                cases[f"bit {bit} of step {step}"] = ok(proof=changed)
        verified = [what for what, passed in cases.items() if passed]
        assert verified == [], f"{m} → {n}: {verified} verified"


def shape(m: int, n: int, b: bool = True) -> list[str]:
    """The steps of SUBPROOF(m, D[n], b), without the hashes."""
    if m == n:
        return ["whole" if b else "node"]
    k = _k(n)
    return [*shape(m, k, b), "right"] if m <= k else [*shape(m - k, n - k, False), "left"]


def test_consistency_when_sizes_are_equal_or_the_first_is_empty_then_an_empty_proof_holds() -> None:
    d = _leaves(5)
    top = mth(d)
    assert merkle.verify_consistency(5, 5, top, top, [])
    assert not merkle.verify_consistency(5, 5, top, _flip(top, 1), [])
    assert not merkle.verify_consistency(5, 5, top, top, [top])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, top, [])
    assert not merkle.verify_consistency(0, 5, top, top, [])
    assert not merkle.verify_consistency(3, 2, top, top, [top])
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_proof(d, 0)
    with pytest.raises(ValueError, match="not in a tree"):
        merkle.inclusion_proof(d, 5)


# ── against pymerkle ──────────────────────────────────────────────────────────


@pytest.mark.parametrize("n", SIZES)
def test_pymerkle_when_given_the_same_entries_then_roots_and_proofs_agree(n: int) -> None:
    pymerkle = pytest.importorskip("pymerkle")
    entries = [f"entry {i}".encode() for i in range(n)]
    theirs = pymerkle.InmemoryTree.init_from_entries(entries, algorithm="sha256")
    d = [merkle.leaf_hash(e) for e in entries]
    tree = merkle.Tree(d)
    assert theirs.get_root(n) == tree.root
    for m in range(n):
        proof = theirs.prove_inclusion(m + 1, n)  # pymerkle counts leaves from one
        assert proof.path[0] == d[m]
        assert proof.path[1:] == tree.inclusion_proof(m)
        pymerkle.verify_inclusion(d[m], tree.root, proof)
    for m in range(1, n):
        proof = theirs.prove_consistency(m, n)
        pymerkle.verify_consistency(theirs.get_root(m), tree.root, proof)
        # pymerkle lays its consistency paths out its own way (its first subtree always
        # included, its steps in another order): ours must lead from its roots to its roots
        assert merkle.verify_consistency(
            m, n, theirs.get_root(m), theirs.get_root(n), tree.consistency_proof(m)
        )
        assert theirs.get_root(m) == merkle.root(d[:m])


# ── the right edge verify grows ───────────────────────────────────────────────


def test_frontier_when_leaves_are_added_one_by_one_then_every_prefix_has_the_rfcs_root() -> None:
    d = _leaves(300)
    edge = merkle.Frontier()
    assert edge.root() == merkle.EMPTY_ROOT
    for n, leaf in enumerate(d, start=1):
        edge.add(leaf)
        assert edge.root() == mth(d[:n]), n
        assert len(edge.nodes) == n.bit_count()  # one complete subtree a bit of the size


@pytest.mark.parametrize("n", [1023, 1024, 1025, 4097, 65_537])
def test_frontier_when_the_tree_is_large_then_its_root_is_the_trees(n: int) -> None:
    d = _leaves(n)
    edge = merkle.Frontier()
    for leaf in d:
        edge.add(leaf)
    assert edge.root() == merkle.Tree(d).root == merkle.root(d)
