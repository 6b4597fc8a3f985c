"""Approvals on the pages: the approval inbox (``/approvals``), the compliance queue
(``/compliance``), and the approval panel of a proposal's page — where it stands, and
the acts the signed-in user may do, each else shown with why not.

Every act is the one machine's (:mod:`poise.workflow.approvals`), as through the API
and the command line: what the pages offer is what the machine says the user may do
now (a dry run of it, nothing written), and what a form asks is decided by the machine
again when it is sent. A form answers with a redirect and says what came of it on the
next page; the panel's forms, sent by htmx, answer with the panel drawn again.

The inbox is for those who approve, the queue for those who clear findings (others are
answered 404, as for a page that does not exist); each shows the households the user
sees, and another household's proposal is not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from poise.api.auth import Principal
from poise.api.deps import EngineDep, SettingsDep
from poise.domain.approvals import MAY, Act
from poise.domain.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from poise.settings import Settings
from poise.web.pages import safe_next, templates
from poise.web.session import WebUser, check_csrf, flash
from poise.workflow.approvals import (
    QUEUE_ROLES,
    Bulk,
    Standing,
    act,
    approve_each,
    choices,
    inbox,
    policy_of,
    queue,
    standing,
)
from poise.workflow.documents import standing_json

__all__ = ["Panel", "panel_of", "router"]

router = APIRouter(include_in_schema=False)

SHOWN = 100  # proposals a page lists
ACTS = {a.value: a for a in (Act.APPROVE, Act.REJECT, Act.RELEASE, Act.ACKNOWLEDGE, Act.OVERRIDE)}
DONE = {Act.APPROVE: "approved", Act.REJECT: "rejected", Act.RELEASE: "released",
        Act.ACKNOWLEDGE: "acknowledged", Act.OVERRIDE: "overridden"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Row:
    """A proposal as a page shows it: where it stands (:func:`standing_json`, with
    what the user may do now), and whether the user prepared it."""

    doc: dict[str, Any]
    mine: bool  # the user prepared it: another person approves it
    link: str  # the page that shows its trades (a household's: its first account's)
    acts: dict[str, dict[str, Any]]  # each act the user's role may do: may, why_not


def _row(stands: Standing, who: Principal, settings: Settings) -> Row:
    doc = standing_json(stands, choices(stands, who.user, policy_of(settings)))
    state = stands.state
    about = stands.about
    parts = about.parts if about is not None else ()
    shown = parts[0] if parts else stands.proposal_id
    mine = state is not None and state.prepared_by == who.user.user_id
    return Row(doc, mine, f"/proposals/{shown}", {a["act"]: a for a in doc["acts"]})


@dataclass(frozen=True, slots=True)
class Panel:
    """A proposal page's approval panel: the proposal shown (``shown``), and the one
    approved — itself, or the household's proposal it is part of (``part_of``)."""

    shown: str
    part_of: str | None
    row: Row
    roles: frozenset[str]  # what the user's role may ever do: approve, reject, …
    message: str = ""
    ok: bool = True


def panel_of(request: Request, who: Principal, proposal_id: str, *, message: str = "",
             ok: bool = True) -> Panel:  # fmt: skip
    """The approval panel of the proposal ``proposal_id`` (which the user sees)."""
    engine = request.app.state.engine
    settings: Settings = request.app.state.settings
    policy = policy_of(settings)
    with engine.connect() as connection:
        stands = standing(connection, proposal_id=proposal_id, policy=policy)
        part_of = stands.part_of
        if part_of is not None:
            stands = standing(connection, proposal_id=part_of, policy=policy)
    roles = frozenset(a.value for a, may in MAY.items() if who.user.role in may)
    return Panel(proposal_id, part_of, _row(stands, who, settings), roles, message, ok)


def _amount(text: str) -> Decimal | None:
    if not text.strip():
        return None
    try:
        amount = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValidationError(f"{text!r} is not an amount of dollars") from None
    if not amount.is_finite() or amount < 0:
        raise ValidationError(f"{text!r} is not an amount of dollars")
    return amount


@router.get("/approvals", response_class=HTMLResponse)
def inbox_page(
    request: Request, who: WebUser, engine: EngineDep, settings: SettingsDep,
    max_notional: str = "",
) -> Response:  # fmt: skip
    """What waits for the user's approval: pending, of the households they see, not
    prepared by them, not approved by them yet; with the four eyes on each."""
    if who.user.role not in MAY[Act.APPROVE]:
        raise NotFoundError("no page /approvals")
    limit = _amount(max_notional)
    found = inbox(engine, user=who.user, policy=policy_of(settings), max_notional=limit)
    rows = [_row(s, who, settings) for s in found[:SHOWN]]
    return templates.TemplateResponse(request, "approvals.html", {
        "user": who.user, "rows": rows, "total": len(found), "max_notional": max_notional,
    })  # fmt: skip


def _said(bulk: Bulk) -> list[tuple[str, bool]]:
    """What approving many came to, a line each, for the next page."""
    lines = [(f"{o.proposal_id}: {o.said}", True) for o in (*bulk.approved, *bulk.already)]
    lines += [(f"{p}: not approved — {why}", False) for p, why in bulk.refused]
    return lines


@router.post("/approvals")
def approve_many(
    request: Request, who: WebUser, engine: EngineDep, settings: SettingsDep, *,
    csrf: Annotated[str, Form()] = "",
    proposal_id: Annotated[list[str] | None, Form()] = None,
    shown: Annotated[list[str] | None, Form()] = None,
    pick: Annotated[str, Form()] = "selected",
    max_notional: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Approve the proposals picked — or every one shown — each on its own; then the
    inbox again, saying what came of each."""
    check_csrf(request, csrf)
    if who.user.role not in MAY[Act.APPROVE]:
        raise NotFoundError("no page /approvals")
    asked = (shown if pick == "all" else proposal_id) or []
    back = f"/approvals?max_notional={max_notional}" if max_notional.strip() else "/approvals"
    if not asked:
        flash(request, "Nothing approved: choose the proposals to approve first.", ok=False)
        return RedirectResponse(back, status_code=303)
    bulk = approve_each(engine, proposal_ids=asked, user=who.user, policy=policy_of(settings))
    for text, ok in _said(bulk):
        flash(request, text, ok=ok)
    return RedirectResponse(back, status_code=303)


@router.get("/compliance", response_class=HTMLResponse)
def queue_page(
    request: Request, who: WebUser, engine: EngineDep, settings: SettingsDep
) -> Response:
    """The proposals a finding holds up — blocked, or with a warning not yet
    acknowledged — of the households the user sees, each finding with what the user
    may do about it."""
    if who.user.role not in QUEUE_ROLES:
        raise NotFoundError("no page /compliance")
    found = queue(engine, user=who.user, policy=policy_of(settings))
    rows = [_row(s, who, settings) for s in found[:SHOWN]]
    return templates.TemplateResponse(request, "compliance.html", {
        "user": who.user, "rows": rows, "total": len(found),
        "may_override": who.user.role in MAY[Act.OVERRIDE],
    })  # fmt: skip


@router.post("/approvals/act", response_class=HTMLResponse)
def act_form(
    request: Request, who: WebUser, engine: EngineDep, settings: SettingsDep, *,
    csrf: Annotated[str, Form()] = "",
    proposal_id: Annotated[str, Form()] = "",
    what: Annotated[str, Form(alias="act")] = "",
    finding_id: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    panel: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "/approvals",
) -> Response:  # fmt: skip
    """One act on one proposal, as the machine decides it. Sent by the panel through
    htmx (``panel``: the proposal its page shows), the panel drawn again, saying what
    came of it; else the page it came from, saying so."""
    check_csrf(request, csrf)
    chosen = ACTS.get(what)
    if chosen is None:
        raise ValidationError(f"no act {what!r}: approve, reject, release, acknowledge, override")
    try:
        outcome = act(
            engine, proposal_id=proposal_id, what=chosen, user=who.user,
            policy=policy_of(settings), reason=reason, finding_id=finding_id or None,
        )  # fmt: skip
    except (ForbiddenError, ConflictError, ValidationError) as refused:
        message, ok = f"Not {DONE[chosen]}: {refused}", False
    else:
        ok = not outcome.ended  # an approval that found it out of date: ended, not approved
        message = (
            f"{outcome.proposal_id}: {outcome.said}"
            if ok
            else f"Not {DONE[chosen]}: {outcome.proposal_id} {outcome.said}"
        )
    if panel and request.headers.get("hx-request") == "true":
        drawn = panel_of(request, who, panel, message=message, ok=ok)
        return templates.TemplateResponse(request, "approval_panel.html", {
            "user": who.user, "approval": drawn,
        })  # fmt: skip
    flash(request, message, ok=ok)
    return RedirectResponse(safe_next(back), status_code=303)
