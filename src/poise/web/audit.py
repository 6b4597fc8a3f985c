"""The audit ledger's pages: its entries, searched and paged, the newest first; an
entry, with its inclusion proof and the checkpoint it is proved in; and a button that
verifies the whole ledger and says what it found — the entry or checkpoint first at
fault, or that every one holds.

Each shows what the API answers and the commands print (``poise audit show``,
``prove --head``, ``verify``), made by the same functions of :mod:`poise.audit`. The
ledger is an examiner's view of the whole firm: its pages are the firm-wide roles'
(anyone else is answered 404, as through the API).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from poise.api.deps import EngineDep, SettingsDep
from poise.api.routes.audit import firm_key, moment
from poise.api.scoping import SEQS
from poise.audit import ledger
from poise.audit.proofs import inclusion_now
from poise.audit.verify import verified_json, verify
from poise.domain.errors import NotFoundError
from poise.domain.users import FIRM_WIDE
from poise.store import repo
from poise.web.pages import templates
from poise.web.session import WebUser, check_csrf

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

PAGE = 50  # entries a page of the ledger shows
OffsetQuery = Annotated[int, Query(ge=0, le=2**31 - 1)]
FILTERS = ("actor", "action", "subject", "from", "to")


def _firm_wide(who: WebUser, what: str) -> None:
    if who.user.role not in FIRM_WIDE:  # as one that does not exist, as through the API
        raise NotFoundError(f"no page {what}")


def _people(engine: EngineDep) -> dict[str, str]:
    """Each user's id → how the pages name them: their name, else their username."""
    with engine.connect() as connection:
        return {u.user_id: u.name or u.username for u in repo.users(connection)}


def _ledger(
    request: Request, who: WebUser, engine: EngineDep, *, asked: dict[str, str], offset: int,
    verified: dict[str, Any] | None = None,
) -> Response:  # fmt: skip
    given = {name: value.strip() for name, value in asked.items() if value.strip()}
    with engine.connect() as connection:
        found, total = ledger.search(
            connection, actor=given.get("actor"), action=given.get("action"),
            subject=given.get("subject"),
            start=moment(given.get("from"), end=False, name="from"),
            end=moment(given.get("to"), end=True, name="to"), limit=PAGE, offset=offset,
        )  # fmt: skip
        points, signed = ledger.latest_checkpoints(connection, limit=1)
        size = ledger.size(connection)
    context = {
        "user": who.user,
        "entries": [ledger.entry_json(e) for e in found],
        "total": total,
        "size": size,
        "offset": offset,
        "page": PAGE,
        "asked": {name: given.get(name, "") for name in FILTERS},
        "query": urlencode(given),
        "latest": ledger.checkpoint_json(points[0]) if points else None,
        "signed": signed,
        "people": _people(engine),
        "verified": verified,
    }
    return templates.TemplateResponse(request, "audit.html", context)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request, who: WebUser, engine: EngineDep, *,
    actor: str = "", action: str = "", subject: str = "",
    start: Annotated[str, Query(alias="from")] = "", end: Annotated[str, Query(alias="to")] = "",
    offset: OffsetQuery = 0,
) -> Response:  # fmt: skip
    """The entries the search form asks for, the newest first, a page at a time."""
    _firm_wide(who, "/audit")
    asked = {"actor": actor, "action": action, "subject": subject, "from": start, "to": end}
    return _ledger(request, who, engine, asked=asked, offset=offset)


@router.post("/audit/verify", response_class=HTMLResponse)
def verify_form(
    request: Request, who: WebUser, engine: EngineDep, settings: SettingsDep,
    csrf: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Verify the whole ledger, as ``poise audit verify`` does, and show what it found
    above the newest entries."""
    check_csrf(request, csrf)
    _firm_wide(who, "/audit")
    with engine.connect() as connection:
        checked = verify(connection, public=firm_key(settings))
    return _ledger(request, who, engine, asked={}, offset=0, verified=verified_json(checked))


@router.get("/audit/{seq}", response_class=HTMLResponse)
def entry_page(request: Request, seq: str, who: WebUser, engine: EngineDep) -> Response:
    """An entry: who, when, what, about what, why, the hash of its data; its inclusion
    proof and the checkpoint it is proved in (or the ledger as it stands, where no
    checkpoint holds it yet) — or why it cannot be proved."""
    _firm_wide(who, f"/audit/{seq}")
    if not (seq.isascii() and seq.isdigit()) or int(seq) > SEQS:
        raise NotFoundError(f"no audit entry {seq}")
    fault = None
    proof: dict[str, Any] | None = None
    with engine.connect() as connection:
        try:
            found = ledger.entry(connection, seq=int(seq))
        except NotFoundError:
            raise NotFoundError(f"no audit entry {seq}") from None
        try:
            proof = inclusion_now(connection, seq=found.seq)
        except ledger.LedgerError as exc:
            fault = str(exc)
        size = ledger.size(connection)
    context = {
        "user": who.user,
        "entry": ledger.entry_json(found),
        "proof": proof,
        "fault": fault,
        "size": size,
        "people": _people(engine),
    }
    return templates.TemplateResponse(request, "audit_entry.html", context)
