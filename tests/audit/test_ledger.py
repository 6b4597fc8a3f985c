"""The ledger in the store, on SQLite and PostgreSQL: entries appended in the caller's
transaction and numbered without a gap, never updated or deleted through SQL, and every
way an attacker with the database in hand could rewrite it — an entry edited, deleted,
inserted or moved, with or without its hashes made anew — named by verify."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.audit.tampering import unguard

from poise.audit import ledger, merkle
from poise.audit.canonical import Entry, at_text, canonical_json, data_hash
from poise.audit.keys import checkpoint_message
from poise.audit.proofs import consistency, inclusion, sign_checkpoint
from poise.audit.verify import verify
from poise.domain.errors import NotFoundError, ValidationError
from poise.store import tables as t

T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _writing(engine: sa.Engine) -> sa.Engine:
    return engine.execution_options(writes=True)


def _fill(engine: sa.Engine, n: int, *, start: int = 0) -> list[Entry]:
    """``n`` entries, as a day of ingest and proposals would leave them."""
    with _writing(engine).begin() as connection:
        return [
            ledger.append(
                connection,
                actor="system" if i % 3 else "u-ana",
                action="ingest.file" if i % 2 else "proposal.made",
                subject=f"S{i:04d}",
                data={"n": i, "amount": Decimal("1.50"), "client": "Ana Díaz"},
                reason="" if i % 4 else f"why {i}",
                at=T0 + timedelta(minutes=i),
            )
            for i in range(start, start + n)
        ]


def _sign(engine: sa.Engine, minutes: int = 0) -> ledger.Checkpoint:
    with _writing(engine).begin() as connection:
        return sign_checkpoint(connection, key=KEY, at=T0 + timedelta(days=1, minutes=minutes))


def _verify(engine: sa.Engine) -> Any:
    with engine.connect() as connection:
        return verify(connection, public=KEY.public_key())


# ── appending ────────────────────────────────────────────────────────────────


def test_append_when_entries_are_added_then_they_are_numbered_chained_and_hash_their_data(
    engine: sa.Engine,
) -> None:
    made = _fill(engine, 5)
    assert [e.seq for e in made] == [0, 1, 2, 3, 4]
    assert made[0].prev_hash == ""
    assert [e.prev_hash for e in made[1:]] == [e.leaf_hash for e in made[:-1]]
    data = {"n": 0, "amount": Decimal("1.50"), "client": "Ana Díaz"}
    assert (
        made[0].data_hash
        == hashlib.sha256('{"amount":"1.50","client":"Ana Díaz","n":0}'.encode()).hexdigest()
    )
    assert made[0].data_hash == data_hash(data)
    with engine.connect() as connection:
        stored = list(ledger.entries(connection))
        raw = connection.execute(sa.select(t.audit_entries)).all()
    assert stored == made
    assert "Ana" not in repr(raw)  # personal data is kept as its hash alone
    leaf = json.dumps(made[2].fields(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert made[2].leaf_hash == hashlib.sha256(b"\x00" + leaf.encode()).hexdigest()
    assert _verify(engine).ok


def test_append_many_when_the_data_was_hashed_elsewhere_then_the_entries_are_the_same(
    engine: sa.Engine,
) -> None:
    data = [{"n": n, "amount": Decimal("1.50"), "client": "Ana Díaz"} for n in range(3)]
    at = datetime(2026, 12, 4, tzinfo=UTC)
    records = [
        ledger.Record("ops", "books.fill", f"A{n}", d, "why", at=at) for n, d in enumerate(data)
    ]
    hashed = [ledger.Record("ops", "books.fill", f"A{n}", None, "why", at=at) for n in range(3)]
    with engine.begin() as connection:
        mine = ledger.append_many(connection, records)
        theirs = ledger.append_many(connection, hashed, hashes=[data_hash(d) for d in data])
        with pytest.raises(ValueError, match="3 records and 2 hashes"):
            ledger.append_many(connection, hashed, hashes=["x", "y"])
    assert [e.data_hash for e in theirs] == [e.data_hash for e in mine]
    assert [e.fields()["subject"] for e in theirs] == ["A0", "A1", "A2"]
    assert _verify(engine).ok


def test_append_when_the_callers_transaction_rolls_back_then_the_entry_goes_with_it(
    engine: sa.Engine,
) -> None:
    _fill(engine, 2)

    def fails() -> None:
        with _writing(engine).begin() as connection:
            ledger.append(connection, actor="system", action="x", subject="s", data={})
            raise RuntimeError("what the entry records failed")

    with pytest.raises(RuntimeError):
        fails()
    made = _fill(engine, 1, start=2)
    assert made[0].seq == 2
    assert _verify(engine).ok


def _postgresql(engine: sa.Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's lock: SQLite's transactions take the write lock at BEGIN")


def test_append_when_a_transaction_appends_on_postgresql_then_one_statement_each(
    engine: sa.Engine,
) -> None:
    """The first append of a transaction takes the lock, finds the end and inserts in
    one statement; the next, under the lock still held, inserts alone."""
    _postgresql(engine)
    _fill(engine, 2)
    sent: list[str] = []

    def sending(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", sending)
    try:
        with _writing(engine).begin() as connection:
            first = ledger.append(connection, actor="a", action="x", subject="2", data={})
            second = ledger.append(connection, actor="a", action="x", subject="3", data={})
    finally:
        sa.event.remove(engine, "before_cursor_execute", sending)
    assert len(sent) == 2, sent
    assert sent[0].startswith("INSERT INTO audit_entries")
    assert "pg_advisory_xact_lock" in sent[0]
    assert (first.seq, second.seq) == (2, 3)
    assert (first.prev_hash, second.prev_hash) == (_fill_leaf(engine, 1), first.leaf_hash)
    assert _verify(engine).ok


def _fill_leaf(engine: sa.Engine, seq: int) -> str:
    with engine.connect() as connection:
        return ledger.entry(connection, seq=seq).leaf_hash


def test_append_when_another_commits_while_it_waits_for_the_lock_then_it_comes_next(
    engine: sa.Engine,
) -> None:
    """The statement that waited began before the other's entry was committed and does
    not see it: it finds the seq taken, inserts nothing, and runs again under the lock
    — the entry after the other's, chained to it."""
    _postgresql(engine)
    _fill(engine, 1)
    holder = _writing(engine).connect()
    holding = holder.begin()
    held = ledger.append(holder, actor="a", action="x", subject="held", data={})
    waiter: dict[str, Any] = {}

    inserts: list[str] = []

    def sending(_c: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT"):
            inserts.append(statement)

    def wait() -> None:
        with _writing(engine).begin() as connection:
            waiter["pid"] = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            sa.event.listen(connection, "before_cursor_execute", sending)
            waiter["entry"] = ledger.append(connection, actor="b", action="x", subject="w", data={})

    thread = threading.Thread(target=wait)
    thread.start()
    blocked = sa.text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted")
    with engine.connect() as looking:
        for _ in range(600):
            if "pid" in waiter and looking.execute(blocked, {"pid": waiter["pid"]}).scalar():
                break
            time.sleep(0.05)
        else:
            pytest.fail("the second append never waited for the lock")
    holding.commit()
    holder.close()
    thread.join(60)
    entry = waiter["entry"]
    assert len(inserts) == 2  # the seq found taken, then the end as it is
    assert (entry.seq, entry.prev_hash) == (held.seq + 1, held.leaf_hash)
    with engine.connect() as connection:
        assert [e.subject for e in ledger.entries(connection)] == ["S0000", "held", "w"]
    assert _verify(engine).ok


def test_append_when_a_correction_is_recorded_then_it_names_an_earlier_entry_only(
    engine: sa.Engine,
) -> None:
    _fill(engine, 2)
    with _writing(engine).begin() as connection:
        fix = ledger.append(
            connection,
            actor="u-ana",
            action="ingest.file",
            subject="S0001",
            data={"n": 1},
            reason="the count was wrong",
            corrects=1,
        )
    assert fix.corrects == 1
    with pytest.raises(ValidationError, match="only an earlier entry"):
        _append_to(engine, corrects=3)
    with pytest.raises(ValidationError, match="float"):
        canonical_json({"price": 1.5})
    with pytest.raises(ValidationError, match="subject is at most 200 characters"):
        _append_to(engine, subject="x" * 201)


def _append_to(engine: sa.Engine, **fields: Any) -> Entry:
    with _writing(engine).begin() as connection:
        return ledger.append(
            connection, **{"actor": "a", "action": "b", "subject": "c", "data": {}, **fields}
        )


def _sql(engine: sa.Engine, statement: str) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(statement)


@pytest.mark.parametrize("table", ["audit_entries", "audit_checkpoints"])
def test_sql_when_it_updates_or_deletes_the_ledger_then_a_trigger_refuses(
    engine: sa.Engine, table: str
) -> None:
    _fill(engine, 3)
    _sign(engine)
    column = "reason" if table == "audit_entries" else "root_hash"
    for statement in (f"UPDATE {table} SET {column} = 'x'", f"DELETE FROM {table}"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            _sql(engine, statement)
    if engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            _sql(engine, f"TRUNCATE {table}")
    assert _verify(engine).ok


# ── checkpoints and proofs ───────────────────────────────────────────────────


def test_checkpoint_when_signed_then_its_proofs_hold_and_verify_checks_its_signature(
    engine: sa.Engine,
) -> None:
    made = _fill(engine, 7)
    first = _sign(engine)
    _fill(engine, 6, start=7)
    second = _sign(engine, 1)
    assert (first.number, first.tree_size, second.number, second.tree_size) == (1, 7, 2, 13)
    leaves = [bytes.fromhex(e.leaf_hash) for e in made]
    assert first.root_hash == merkle.root(leaves).hex()
    message = checkpoint_message(size=7, root=bytes.fromhex(first.root_hash), at=first.at)
    assert (
        message
        == f"poise-audit-checkpoint/v1\n7\n{first.root_hash}\n{at_text(first.at)}\n".encode()
    )
    KEY.public_key().verify(bytes.fromhex(first.signature), message)

    with engine.connect() as connection:
        proof = inclusion(connection, seq=3, number=1)
        latest = inclusion(connection, seq=12)
        between = consistency(connection, old=1, new=2)
        with pytest.raises(NotFoundError, match="not in checkpoint 1"):
            inclusion(connection, seq=9, number=1)
    path = [bytes.fromhex(p) for p in proof["path"]]
    assert merkle.verify_inclusion(3, 7, leaves[3], path, leaves and merkle.root(leaves))
    assert latest["tree_size"] == 13
    assert merkle.verify_consistency(
        7,
        13,
        bytes.fromhex(first.root_hash),
        bytes.fromhex(second.root_hash),
        [bytes.fromhex(p) for p in between["path"]],
    )
    checked = _verify(engine)
    assert checked.ok
    assert (checked.entries, checked.checkpoints, checked.signatures_checked) == (13, 2, True)
    other = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    with engine.connect() as connection:
        refused = verify(connection, public=other)
    assert refused.fault is not None
    assert "not the firm's" in refused.fault.reason


# ── tampering ────────────────────────────────────────────────────────────────
# An attacker with the database: the triggers dropped, the rows rewritten.


Rows = list[dict[str, Any]]


def _rehash(rows: Rows, start: int) -> Rows:
    """Every entry from ``start`` on given its leaf hash and chain anew, as a careful
    attacker would."""
    prev = rows[start - 1]["leaf_hash"] if start else ""
    for row in rows[start:]:
        made = Entry.make(**{**{k: row[k] for k in row if k != "leaf_hash"}, "prev_hash": prev})
        row["leaf_hash"] = made.leaf_hash
        row["prev_hash"] = prev
        prev = made.leaf_hash
    return rows


def _rewrite(engine: sa.Engine, change: Callable[[Rows], Rows]) -> None:
    with _writing(engine).begin() as connection:
        unguard(connection)
        rows = [
            dict(r._mapping)
            for r in connection.execute(sa.select(t.audit_entries).order_by(t.audit_entries.c.seq))
        ]
        connection.execute(sa.delete(t.audit_entries))
        changed = change(rows)
        if changed:
            connection.execute(sa.insert(t.audit_entries), changed)


def _edit(rows: Rows) -> Rows:
    rows[4]["reason"] = "approved by the other partner"
    return rows


def _releaf(rows: Rows, start: int, stop: int | None = None) -> Rows:
    """Entries ``start:stop`` given their own leaf hash anew, their chain as it was."""
    for row in rows[start:stop]:
        row["leaf_hash"] = Entry.make(**{k: row[k] for k in row if k != "leaf_hash"}).leaf_hash
    return rows


def _renumber(rows: Rows) -> Rows:
    for seq, row in enumerate(rows):
        row["seq"] = seq
    return rows


def _edit_releafed(rows: Rows) -> Rows:
    return _releaf(_edit(rows), 4, 5)


def _edit_rechained(rows: Rows) -> Rows:
    return _rehash(_edit(rows), 4)  # every later entry's chain too: only a checkpoint tells


def _delete(rows: Rows) -> Rows:
    return rows[:4] + rows[5:]


def _delete_renumbered(rows: Rows) -> Rows:
    return _releaf(_renumber(rows[:4] + rows[5:]), 4)


def _insert(rows: Rows) -> Rows:
    forged = {**rows[4], "subject": "S-FORGED", "reason": "backdated"}
    return _releaf(_renumber([*rows[:4], forged, *rows[4:]]), 4)


def _swap(rows: Rows) -> Rows:
    a, b = rows[4], rows[5]
    rows[4], rows[5] = {**b, "seq": 4}, {**a, "seq": 5}
    return rows


def _swap_releafed(rows: Rows) -> Rows:
    return _releaf(_swap(rows), 4, 6)


TAMPERING: dict[str, tuple[Callable[[Rows], Rows], int, str]] = {
    "edited": (_edit, 4, r"^entry 4 was edited"),
    "edited, its leaf made anew": (
        _edit_releafed,
        4,
        r"^the chain breaks between entries 4 and 5: .* entry 4 was edited",
    ),
    "edited, leaf and chain made anew": (
        _edit_rechained,
        0,
        r"^checkpoint 1 \(10 entries, .*\) does not match the ledger: entries 0\.\.9 were",
    ),
    "deleted": (_delete, 4, r"^entry 4 was deleted: the ledger goes from entry 3 to entry 5"),
    "deleted, the rest renumbered": (
        _delete_renumbered,
        3,
        r"^the chain breaks between entries 3 and 4: .* an entry between them deleted",
    ),
    "inserted": (_insert, 4, r"^the chain breaks between entries 4 and 5: .* or inserted"),
    "reordered": (_swap, 4, r"^entry 4 was edited: .* moved into its place"),
    "reordered, leaves made anew": (
        _swap_releafed,
        3,
        r"^the chain breaks between entries 3 and 4: .* entry 4 moved there",
    ),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_verify_when_one_entry_is_tampered_with_then_it_names_it(
    engine: sa.Engine, how: str
) -> None:
    _fill(engine, 10)
    _sign(engine)
    _fill(engine, 3, start=10)
    assert _verify(engine).ok
    change, seq, reason = TAMPERING[how]
    _rewrite(engine, change)
    checked = _verify(engine)
    assert checked.fault is not None, how
    assert "\n" not in checked.fault.reason
    assert re.search(reason, checked.fault.reason), checked.fault.reason
    assert checked.fault.seq == seq


def test_verify_when_an_entry_is_edited_after_the_last_checkpoint_then_the_chain_names_it(
    engine: sa.Engine,
) -> None:
    _fill(engine, 10)
    _rewrite(engine, _edit_releafed)
    checked = _verify(engine)
    assert checked.fault is not None
    assert checked.fault.seq == 4
    assert checked.fault.reason.startswith("the chain breaks between entries 4 and 5")


def test_verify_when_a_checkpoint_is_changed_or_entries_cut_off_then_it_says_so(
    engine: sa.Engine,
) -> None:
    _fill(engine, 6)
    _sign(engine)
    with _writing(engine).begin() as connection:
        unguard(connection)
        connection.execute(sa.update(t.audit_checkpoints).values(tree_size=5))
    checked = _verify(engine)
    assert checked.fault is not None
    assert "signature does not hold" in checked.fault.reason
    with _writing(engine).begin() as connection:
        connection.execute(sa.update(t.audit_checkpoints).values(tree_size=6))
        connection.execute(sa.delete(t.audit_entries).where(t.audit_entries.c.seq >= 4))
    checked = _verify(engine)
    assert checked.fault is not None
    assert checked.fault.reason.startswith(
        "checkpoint 1 signs 6 entries but the ledger holds 4: entries 4..5 were deleted"
    )


def test_inclusion_when_the_entry_was_changed_then_its_old_proof_fails(engine: sa.Engine) -> None:
    _fill(engine, 9)
    _sign(engine)
    with engine.connect() as connection:
        proof = inclusion(connection, seq=4)
    _rewrite(engine, _edit)
    with engine.connect() as connection:
        changed = ledger.entry(connection, seq=4)
        with pytest.raises(ledger.LedgerError):
            inclusion(connection, seq=4)  # its tree no longer gives the signed root
    root = bytes.fromhex(proof["checkpoint"]["root_hash"])
    path = [bytes.fromhex(p) for p in proof["path"]]
    leaf = json.dumps(changed.fields(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    changed_leaf = merkle.leaf_hash(leaf.encode())
    assert not merkle.verify_inclusion(4, 9, changed_leaf, path, root)
    assert merkle.verify_inclusion(4, 9, bytes.fromhex(proof["leaf_hash"]), path, root)


def test_append_when_savepoints_roll_back_or_release_then_seqs_stay_contiguous(
    engine: sa.Engine,
) -> None:
    with _writing(engine).begin() as connection:
        first = ledger.append(connection, actor="a", action="x", subject="0", data={})
        kept = connection.begin_nested()
        ledger.append(connection, actor="a", action="x", subject="kept", data={})
        kept.commit()
        third = ledger.append(connection, actor="a", action="x", subject="2", data={})
        dropped = connection.begin_nested()
        ledger.append(connection, actor="a", action="x", subject="dropped", data={})
        dropped.rollback()
        last = ledger.append(connection, actor="a", action="x", subject="3", data={})
    assert (first.seq, third.seq, last.seq) == (0, 2, 3)
    with engine.connect() as connection:
        assert [e.subject for e in ledger.entries(connection)] == ["0", "kept", "2", "3"]
    assert _verify(engine).ok


def test_verify_when_the_firm_changed_keys_then_each_checkpoint_is_checked_with_its_own(
    engine: sa.Engine,
) -> None:
    later = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
    _fill(engine, 3)
    _sign(engine)
    _fill(engine, 2, start=3)
    with _writing(engine).begin() as connection:
        sign_checkpoint(
            connection,
            key=later,
            at=T0 + timedelta(days=2),
            earlier_keys=[KEY.public_key()],
        )
    with engine.connect() as connection:
        both = verify(connection, public=[KEY.public_key(), later.public_key()])
        only_later = verify(connection, public=later.public_key())
    assert both.ok
    assert only_later.fault is not None
    assert only_later.fault.checkpoint == 1
    assert "names the key" in only_later.fault.reason
