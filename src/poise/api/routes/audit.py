"""The audit ledger through the API: its entries, searched and paged; one entry with its
inclusion proof; the signed checkpoints; and the ledger verified whole — each answered
by the function its command uses (``poise audit show``, ``prove``, ``verify``), in the
shape the command prints with ``--json`` (docs/audit.md).

The ledger is an examiner's view of the whole firm — its entries name every
household's proposals and every file loaded, and who acted — so it is for the
firm-wide roles (:data:`poise.api.scoping.firm_only`: 403 for the lists, 404 for one
entry to the others). An adviser or a client is given a proof of an entry by
compliance (``poise audit prove``), not the ledger.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Depends, Query, Request, Response

from poise.api.deps import EngineDep, SettingsDep
from poise.api.http import LimitQuery, OffsetQuery
from poise.api.routes.answers import FORBIDDEN, NOT_FOUND, SIGNED_IN, Document, Moment, answer
from poise.api.scoping import ScopedDep, firm_only, scoped_router
from poise.audit import ledger
from poise.audit.keys import default_key_path, public_half
from poise.audit.proofs import inclusion, inclusion_now
from poise.audit.verify import verified_json, verify
from poise.domain.errors import ValidationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from poise.settings import Settings

__all__ = ["firm_key", "moment", "router"]

router = scoped_router(
    tags=["audit"], dependencies=[Depends(firm_only)], responses={**SIGNED_IN, **FORBIDDEN}
)


class EntryFields(Document):
    """The fields an entry's leaf hash covers."""

    seq: int  # its place: its leaf index
    at: Moment  # UTC, to the microsecond, as the leaf writes it
    actor: str  # a user's id, or system
    action: str  # ingest.file, proposal.approve, …
    subject: str  # what it was done to: a file's id, a proposal's, …
    reason: str
    data_hash: str  # SHA-256 of the canonical JSON of the data it concerns
    corrects: int | None  # the entry it corrects, if any
    prev_hash: str  # the previous entry's leaf hash ("" for entry 0)


class EntryOut(EntryFields):
    leaf_hash: str


class EntriesPage(Document):
    items: list[EntryOut]
    total: int
    limit: int
    offset: int


class CheckpointOut(Document):
    number: int
    tree_size: int
    root_hash: str
    at: Moment  # when it was signed
    key_id: str  # SHA-256 of the signing key's raw public bytes
    signature: str  # Ed25519, over the four lines of docs/audit.md


class CheckpointsPage(Document):
    items: list[CheckpointOut]
    total: int
    limit: int
    offset: int


class InclusionOut(Document):
    """``poise audit prove``'s document: the entry is leaf ``index`` of the tree of
    ``tree_size`` entries whose root is ``root_hash`` — the root ``checkpoint`` signed,
    or, where no checkpoint holds the entry yet, the ledger's as it stands (``null``:
    signed by nobody)."""

    kind: Literal["poise-audit-inclusion/v1"]
    entry: EntryFields
    leaf_hash: str
    index: int
    tree_size: int
    root_hash: str
    path: list[str]  # the audit path, leaf to root (RFC 9162 §2.1.3)
    checkpoint: CheckpointOut | None


class FaultOut(Document):
    seq: int | None  # the entry named, if one is
    checkpoint: int | None  # the checkpoint named, if one is
    reason: str


class VerifiedOut(Document):
    verified: bool
    entries: int
    checkpoints: int
    root_hash: str  # of the whole tree (verified up to the first fault)
    signatures_checked: bool  # false: the server holds no key to check them with
    fault: FaultOut | None  # the first fault found


TimeQuery = Annotated[
    str | None,
    Query(
        description="A time (ISO 8601; UTC unless it says) or a date: `from` its start,"
        " `to` its end.",
        examples=["2026-12-01"],
    ),
]


def moment(text: str | None, *, end: bool, name: str) -> datetime | None:
    """A ``from`` or ``to`` as ``poise audit show`` reads it: a bare date is the start
    (``end``: the last microsecond) of that day, UTC; a 422 when it is no time."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day, time.max if end else time.min, tzinfo=UTC)
        found = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name}: {text!r} is not a date or an ISO 8601 time") from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def firm_key(settings: Settings) -> Ed25519PublicKey | None:
    """The key checkpoints' signatures are checked with, as ``poise audit verify``
    finds it: the public half of the firm's key file (``POISE_AUDIT_KEY``) where the
    server can read it; else none, and the signatures are not checked."""
    path: Path = settings.audit_key or default_key_path()
    return public_half(path)


@router.get("/audit/entries", response_model=EntriesPage, summary="The audit ledger's entries")
def list_entries(
    request: Request, who: ScopedDep, engine: EngineDep,
    actor: Annotated[str | None, Query(description="Who acted: a user's id, or system.")] = None,
    action: Annotated[
        str | None, Query(description="What was done; `ingest.*` for a prefix.")
    ] = None,
    subject: Annotated[str | None, Query(description="What it was done to: an id.")] = None,
    start: Annotated[TimeQuery, Query(alias="from")] = None,
    end: Annotated[TimeQuery, Query(alias="to")] = None,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The entries the filters match, the newest first, each as ``poise audit show
    --json`` prints it: who, when, what, about what, why, the hash of its data, and its
    hashes in the ledger."""
    with engine.connect() as connection:
        found, total = ledger.search(
            connection, actor=actor or None, action=action or None, subject=subject or None,
            start=moment(start, end=False, name="from"), end=moment(end, end=True, name="to"),
            limit=limit, offset=offset,
        )  # fmt: skip
    document = {"items": [ledger.entry_json(e) for e in found], "total": total,
                "limit": limit, "offset": offset}  # fmt: skip
    return answer(request, EntriesPage, document)


@router.get(
    "/audit/entries/{seq}",
    response_model=InclusionOut,
    summary="An entry, with its inclusion proof",
    responses=NOT_FOUND,
)
def get_entry(
    request: Request, seq: int, who: ScopedDep, engine: EngineDep,
    checkpoint: Annotated[
        int | None, Query(ge=1, description="Prove it in this checkpoint (default: the latest).")
    ] = None,
) -> Response:  # fmt: skip
    """The entry and its inclusion proof, as ``poise audit prove --head`` writes it: in
    the latest checkpoint (or the one named), whose signature anyone with the firm's
    public key can check; where no checkpoint holds it yet, in the ledger as it stands
    (``checkpoint: null``). An entry whose fields no longer give its leaf hash, or a
    ledger whose entries no longer give a checkpoint's root, is a 409 that says so."""
    with engine.connect() as connection:
        if checkpoint is None:
            document = inclusion_now(connection, seq=seq)
        else:
            document = inclusion(connection, seq=seq, number=checkpoint)
    return answer(request, InclusionOut, document)


@router.get("/audit/checkpoints", response_model=CheckpointsPage, summary="The signed checkpoints")
def list_checkpoints(
    request: Request, who: ScopedDep, engine: EngineDep,
    limit: LimitQuery = 100, offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The ledger's signed heads, the latest first: how many entries each holds, their
    root, when it was signed, by which key, and the signature."""
    with engine.connect() as connection:
        points, total = ledger.latest_checkpoints(connection, limit=limit, offset=offset)
    document = {"items": [ledger.checkpoint_json(p) for p in points], "total": total,
                "limit": limit, "offset": offset}  # fmt: skip
    return answer(request, CheckpointsPage, document)


@router.get("/audit/verify", response_model=VerifiedOut, summary="Verify the whole ledger")
def verify_ledger(
    request: Request, who: ScopedDep, engine: EngineDep, settings: SettingsDep
) -> Response:
    """What ``poise audit verify --json`` prints: every entry's leaf rebuilt and hashed,
    the chain followed, the tree grown, each checkpoint's root and signature checked —
    ``verified``, or the first fault, naming the entry or checkpoint. A ledger that does
    not verify is still a 200: the answer is what verifying found."""
    public = firm_key(settings)
    with engine.connect() as connection:
        checked = verify(connection, public=public)
    return answer(request, VerifiedOut, verified_json(checked))
