"""The ledger in the store: append an entry in the caller's transaction, read entries
back, sign a checkpoint.

:func:`append` is the one function every stage calls. It writes in the transaction it
is given, so an entry lands exactly when what it records lands, and is rolled back
with it. Its ``seq`` is the next leaf index, allocated without a gap or a repeat: on
PostgreSQL under an advisory lock held until the transaction ends, on SQLite under the
database's write lock — begin the transaction with ``writes=True``
(:data:`poise.store.engine.WRITES`), as every writing shell does, so that it waits for
that lock rather than failing when another writer got there first. The lock is held
from the append to the commit, and every other append waits for it: append last in
the transaction, once the long work is done (ingest appends after its upsert).

On PostgreSQL the first append of a transaction is one statement, one round trip to the
server: it takes the lock, finds the end, and inserts the entry there, the server
hashing the leaf from the pieces poise wrote around the entry's place
(:func:`~poise.audit.canonical.leaf_parts`); poise hashes the leaf again from the
fields returned and refuses an entry whose hash differs. Later appends in the same
transaction are one insert each.

Each entry also keeps the previous entry's leaf hash (``prev_hash``, inside its own
leaf): a chain beside the tree, so that an entry edited with its leaf hash made anew
is named by the next entry, which still records the old one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from poise.audit.canonical import Entry, at_text, check_fields, data_hash, leaf_parts
from poise.domain.errors import NotFoundError, PoiseError
from poise.store import tables as t
from poise.store.rows import insert_rows

__all__ = [
    "LEDGER_LOCK",
    "Checkpoint",
    "LedgerError",
    "Record",
    "append",
    "append_many",
    "checkpoint",
    "checkpoint_json",
    "checkpoints",
    "entries",
    "entry",
    "entry_json",
    "find_checkpoint",
    "latest_checkpoints",
    "leaf_hashes",
    "search",
    "size",
]

# The first key of the advisory lock that orders appends on PostgreSQL (the second is
# the schema's name, hashed): poise's own constant, apart from the schema's lock.
LEDGER_LOCK = 0x61756474  # "audt"


class LedgerError(PoiseError):
    """The ledger does not verify: an entry or checkpoint was changed, removed or added
    outside poise."""

    exit_code = 8
    http_status = 409


@dataclass(frozen=True, slots=True)
class Record:
    """What a caller appends: an entry before its place in the ledger is known."""

    actor: str
    action: str
    subject: str
    data: Any
    reason: str = ""
    corrects: int | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed tree head: the tree of the first ``tree_size`` entries had this root."""

    number: int
    tree_size: int
    root_hash: str
    at: datetime
    signature: str
    key_id: str


# Built once: an append runs them for every entry, and building a statement costs more
# than SQLite takes to answer it.
_HELD = sa.func.pg_advisory_xact_lock(
    LEDGER_LOCK, sa.func.hashtext(sa.func.coalesce(sa.func.current_schema(), ""))
)
_LOCK = sa.select(_HELD)
_LAST = (
    sa.select(t.audit_entries.c.seq, t.audit_entries.c.leaf_hash)
    .order_by(t.audit_entries.c.seq.desc())
    .limit(1)
)
_INSERT = sa.insert(t.audit_entries)


def _lock(connection: sa.Connection) -> None:
    """Hold the ledger's lock until ``connection``'s transaction ends (PostgreSQL; on
    SQLite the transaction's write lock does it)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK)


def _last(connection: sa.Connection) -> tuple[int, str]:
    """The next seq and the leaf hash before it ("" for the first entry)."""
    row = connection.execute(_LAST).first()
    return (0, "") if row is None else (row.seq + 1, row.leaf_hash)


def _placing() -> sa.Insert:
    """PostgreSQL: one statement that takes the ledger's lock, finds its end and inserts
    an entry there — its seq the next, its ``prev_hash`` the last leaf hash, its own
    leaf hash SHA-256 of the leaf's pieces (:func:`~poise.audit.canonical.leaf_parts`,
    ``:head``, ``:middle``, ``:tail``) with those two written between them — and
    returns the three.

    Its snapshot is taken when it starts, before the lock it waits for inside: an entry
    committed in between is not seen, and the seq it would take is found taken by ``ON
    CONFLICT`` (which looks at the index as it stands), so nothing is inserted. Run
    again, with the lock now held, the statement sees the end as it is."""
    c = t.audit_entries.c
    held = sa.select(_HELD.label("held")).subquery("held")
    last = sa.select(c.seq, c.leaf_hash).order_by(c.seq.desc()).limit(1).lateral("last")
    seq = sa.func.coalesce(last.c.seq + 1, 0)
    prev = sa.func.coalesce(last.c.leaf_hash, "")

    def piece(name: str) -> sa.BindParameter[bytes]:
        return sa.bindparam(name, type_=sa.LargeBinary)

    leaf = (
        piece("head")
        .op("||")(sa.func.convert_to(prev, "UTF8"))
        .op("||")(piece("middle"))
        .op("||")(sa.func.convert_to(sa.cast(seq, sa.Text), "UTF8"))
        .op("||")(piece("tail"))
    )
    placed = {
        "seq": seq,
        "prev_hash": prev,
        "leaf_hash": sa.func.encode(sa.func.sha256(leaf), "hex"),
    }
    names = [column.name for column in t.audit_entries.columns]
    values = [placed.get(n, sa.bindparam(n, type_=c[n].type)) for n in names]
    return (
        postgresql.insert(t.audit_entries)
        .from_select(names, sa.select(*values).select_from(held.outerjoin(last, sa.true())))
        .on_conflict_do_nothing(index_elements=[c.seq])
        .returning(c.seq, c.prev_hash, c.leaf_hash)
    )


_PLACING = _placing()
_END = "poise.audit.end"  # connection.info: the transaction, its next seq, its last leaf


def _innermost(connection: sa.Connection) -> sa.engine.Transaction | None:
    return connection.get_nested_transaction() or connection.get_transaction()


def _kept(connection: sa.Connection) -> tuple[int, str] | None:
    """The next seq and the last leaf hash, if this transaction (or savepoint) appended
    last: the lock is held until it ends, so nobody else can have appended since."""
    transaction = _innermost(connection)
    kept = connection.info.get(_END)
    if kept is not None and transaction is not None and kept[0] is transaction:  # noqa: SIM102
        if transaction.is_active:  # (its own test: the slot may hold one that ended)
            return kept[1], kept[2]
    return None


def _remember(connection: sa.Connection, seq: int, prev: str) -> None:
    """Keep the ledger's end for the next append in the same transaction or savepoint
    (one slot: an append anywhere else looks again)."""
    transaction = _innermost(connection)
    if transaction is not None:
        connection.info[_END] = (transaction, seq, prev)
    else:
        connection.info.pop(_END, None)


def _row(entry: Entry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "reason": entry.reason,
        "data_hash": entry.data_hash,
        "corrects": entry.corrects,
        "prev_hash": entry.prev_hash,
        "leaf_hash": entry.leaf_hash,
    }


def append(
    connection: sa.Connection,
    *,
    actor: str,
    action: str,
    subject: str,
    data: Any,
    reason: str = "",
    corrects: int | None = None,
    at: datetime | None = None,
) -> Entry:
    """Append one entry in ``connection``'s transaction and return it.

    ``data`` is what the entry concerns; only the SHA-256 of its canonical JSON is kept
    (:func:`poise.audit.canonical.data_hash`), so personal data never lands in the
    ledger in the clear. ``corrects`` names an earlier entry this one corrects.
    """
    record = Record(actor, action, subject, data, reason, corrects, at)
    return append_many(connection, [record])[0]


def _made(
    records: Sequence[Record], hashes: Sequence[str], seq: int, prev: str, now: datetime
) -> list[Entry]:
    """The entries of ``records``, the first at ``seq`` after the leaf hash ``prev``."""
    made: list[Entry] = []
    for record, hashed in zip(records, hashes, strict=True):
        entry = Entry.make(
            seq=seq,
            at=record.at or now,
            actor=record.actor,
            action=record.action,
            subject=record.subject,
            reason=record.reason,
            data_hash=hashed,
            corrects=record.corrects,
            prev_hash=prev,
        )
        made.append(entry)
        seq, prev = seq + 1, entry.leaf_hash
    return made


def _placed(connection: sa.Connection, record: Record, hashed: str, now: datetime) -> Entry | None:
    """``record`` appended at the ledger's end, the lock taken, the end found and the
    entry inserted in one statement (:func:`_placing`; twice when an entry was committed
    while it waited for the lock); ``None`` if it could not be (and nothing was)."""
    at = (record.at or now).astimezone(UTC)
    check_fields(actor=record.actor, action=record.action, subject=record.subject)
    head, middle, tail = leaf_parts(
        at=at_text(at), actor=record.actor, action=record.action, subject=record.subject,
        reason=record.reason, data_hash=hashed, corrects=None,
    )  # fmt: skip
    values = {
        "at": at, "actor": record.actor, "action": record.action, "subject": record.subject,
        "reason": record.reason, "data_hash": hashed, "corrects": None,
        "head": head, "middle": middle, "tail": tail,
    }  # fmt: skip
    for _ in range(2):
        row = connection.execute(_PLACING, values).first()
        if row is not None:
            break
    else:
        return None
    entry = Entry.make(
        seq=row.seq, at=at, actor=record.actor, action=record.action, subject=record.subject,
        reason=record.reason, data_hash=hashed, corrects=None, prev_hash=row.prev_hash,
    )  # fmt: skip
    if entry.leaf_hash != row.leaf_hash:  # never, unless the database hashes otherwise
        raise LedgerError(
            f"entry {row.seq} was hashed by the database as {row.leaf_hash}, not as its"
            f" fields give ({entry.leaf_hash}): not appended"
        )
    return entry


def append_many(
    connection: sa.Connection,
    records: Sequence[Record],
    *,
    hashes: Sequence[str] | None = None,
) -> list[Entry]:
    """Append several entries, in order, in ``connection``'s transaction: one lock, one
    look at the ledger's end and one insert for them all — on PostgreSQL the first of a
    transaction's entries in one statement with the lock and the look
    (:func:`_placing`), the rest in one more. ``hashes``: each record's
    :func:`data_hash`, where it was made already (by the worker process that made the
    data; the ledger keeps only the hash) — the records' own ``data`` is then unused."""
    if not records:
        return []
    now = datetime.now(UTC)
    if hashes is None:
        hashes = [data_hash(record.data) for record in records]
    elif len(hashes) != len(records):
        raise ValueError(f"{len(records)} records and {len(hashes)} hashes")
    kept = _kept(connection)
    first = None
    if kept is None and connection.dialect.name == "postgresql" and records[0].corrects is None:
        first = _placed(connection, records[0], hashes[0], now)
    if first is not None:
        made = [first, *_made(records[1:], hashes[1:], first.seq + 1, first.leaf_hash, now)]
        if len(made) > 1:
            insert_rows(connection, t.audit_entries, [_row(e) for e in made[1:]])
    else:
        if kept is None:
            _lock(connection)
            kept = _last(connection)
        made = _made(records, hashes, kept[0], kept[1], now)
        if len(made) == 1:
            connection.execute(_INSERT, _row(made[0]))
        else:
            insert_rows(connection, t.audit_entries, [_row(e) for e in made])
    _remember(connection, made[-1].seq + 1, made[-1].leaf_hash)
    return made


def size(connection: sa.Connection) -> int:
    """How many entries the ledger holds (the next seq)."""
    return _last(connection)[0]


def _entry(row: Any) -> Entry:
    return Entry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        reason=row.reason,
        data_hash=row.data_hash,
        corrects=row.corrects,
        prev_hash=row.prev_hash,
        leaf_hash=row.leaf_hash,
    )


def entry(connection: sa.Connection, *, seq: int) -> Entry:
    row = connection.execute(sa.select(t.audit_entries).where(t.audit_entries.c.seq == seq)).first()
    if row is None:
        raise NotFoundError(f"the audit ledger has no entry {seq}")
    return _entry(row)


def entry_json(found: Entry) -> dict[str, Any]:
    """An entry as ``poise audit show --json`` and the API show it: the fields its leaf
    covers (``at`` as the leaf writes it), and its leaf hash."""
    return {**found.fields(), "leaf_hash": found.leaf_hash}


def _filtered(
    query: sa.Select[Any],
    *,
    actor: str | None,
    action: str | None,
    subject: str | None,
    start: datetime | None,
    end: datetime | None,
) -> sa.Select[Any]:
    c = t.audit_entries.c
    if actor is not None:
        query = query.where(c.actor == actor)
    if action is not None:
        if action.endswith("*"):
            query = query.where(c.action.startswith(action[:-1], autoescape=True))
        else:
            query = query.where(c.action == action)
    if subject is not None:
        query = query.where(c.subject == subject)
    if start is not None:
        query = query.where(c.at >= start)
    if end is not None:
        query = query.where(c.at <= end)
    return query


def entries(
    connection: sa.Connection,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    first: int | None = None,
    last: int | None = None,
    limit: int | None = None,
) -> Iterator[Entry]:
    """Entries in order of seq, as filtered: ``start <= at <= end``, who acted, an action
    (a trailing ``*`` matches its prefix: ``ingest.*``), a subject, seqs
    ``first..last``."""
    c = t.audit_entries.c
    query = _filtered(
        sa.select(t.audit_entries).order_by(c.seq),
        actor=actor, action=action, subject=subject, start=start, end=end,
    )  # fmt: skip
    if first is not None:
        query = query.where(c.seq >= first)
    if last is not None:
        query = query.where(c.seq <= last)
    if limit is not None:
        query = query.limit(limit)
    for row in connection.execute(query, execution_options={"yield_per": 10_000}):
        yield _entry(row)


def search(
    connection: sa.Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[Entry], int]:
    """A page of the entries as filtered (as :func:`entries` filters them), the newest
    first, and how many the filters match."""
    c = t.audit_entries.c

    def matching(query: sa.Select[Any]) -> sa.Select[Any]:
        return _filtered(query, actor=actor, action=action, subject=subject, start=start, end=end)

    total = connection.execute(
        matching(sa.select(sa.func.count()).select_from(t.audit_entries))
    ).scalar()
    query = matching(sa.select(t.audit_entries)).order_by(c.seq.desc())
    rows = connection.execute(query.limit(limit).offset(offset))
    return [_entry(row) for row in rows], int(total or 0)


def leaf_hashes(connection: sa.Connection, *, tree_size: int | None = None) -> list[bytes]:
    """The stored leaf hashes of the first ``tree_size`` entries (all: ``None``), as
    bytes, in order of seq. A missing entry is a :class:`LedgerError`."""
    c = t.audit_entries.c
    query = sa.select(c.seq, c.leaf_hash).order_by(c.seq)
    if tree_size is not None:
        query = query.where(c.seq < tree_size)
    hashes: list[bytes] = []
    append_hash = hashes.append
    for seq, leaf in connection.execute(query, execution_options={"yield_per": 50_000}):
        if seq != len(hashes):
            raise LedgerError(
                f"entry {len(hashes)} is missing: run `poise audit verify` for what else is"
            )
        append_hash(bytes.fromhex(leaf))
    if tree_size is not None and len(hashes) != tree_size:
        raise LedgerError(f"the ledger holds {len(hashes)} entries, not {tree_size}")
    return hashes


def _checkpoint(row: Any) -> Checkpoint:
    return Checkpoint(
        number=row.number,
        tree_size=row.tree_size,
        root_hash=row.root_hash,
        at=row.at,
        signature=row.signature,
        key_id=row.key_id,
    )


def checkpoints(connection: sa.Connection) -> list[Checkpoint]:
    """Every checkpoint, in order of number."""
    rows = connection.execute(sa.select(t.audit_checkpoints).order_by(t.audit_checkpoints.c.number))
    return [_checkpoint(row) for row in rows]


def latest_checkpoints(
    connection: sa.Connection, *, limit: int, offset: int = 0
) -> tuple[list[Checkpoint], int]:
    """A page of the checkpoints, the latest first, and how many there are."""
    c = t.audit_checkpoints.c
    total = connection.execute(sa.select(sa.func.count()).select_from(t.audit_checkpoints))
    rows = connection.execute(
        sa.select(t.audit_checkpoints).order_by(c.number.desc()).limit(limit).offset(offset)
    )
    return [_checkpoint(row) for row in rows], int(total.scalar() or 0)


def find_checkpoint(connection: sa.Connection, *, number: int | None = None) -> Checkpoint:
    """Checkpoint ``number``, or the latest; a :class:`NotFoundError` if there is none."""
    query = sa.select(t.audit_checkpoints)
    if number is None:
        query = query.order_by(t.audit_checkpoints.c.number.desc()).limit(1)
    else:
        query = query.where(t.audit_checkpoints.c.number == number)
    row = connection.execute(query).first()
    if row is None:
        raise NotFoundError(
            "the audit ledger has no checkpoint yet: sign one with `poise audit checkpoint`"
            if number is None
            else f"the audit ledger has no checkpoint {number}"
        )
    return _checkpoint(row)


def checkpoint(
    connection: sa.Connection,
    *,
    tree_size: int,
    root: bytes,
    at: datetime,
    signature: bytes,
    key_id: str,
) -> Checkpoint:
    """Keep a signed tree head, numbered after the last, in ``connection``'s transaction."""
    _lock(connection)
    last = connection.execute(sa.select(sa.func.max(t.audit_checkpoints.c.number))).scalar()
    made = Checkpoint(
        number=(last or 0) + 1,
        tree_size=tree_size,
        root_hash=root.hex(),
        at=at,
        signature=signature.hex(),
        key_id=key_id,
    )
    connection.execute(
        sa.insert(t.audit_checkpoints).values(
            number=made.number,
            tree_size=made.tree_size,
            root_hash=made.root_hash,
            at=made.at,
            signature=made.signature,
            key_id=made.key_id,
        )
    )
    return made


def checkpoint_json(point: Checkpoint) -> dict[str, Any]:
    """A checkpoint as proofs and exports carry it."""
    return {
        "number": point.number,
        "tree_size": point.tree_size,
        "root_hash": point.root_hash,
        "at": at_text(point.at),
        "key_id": point.key_id,
        "signature": point.signature,
    }
