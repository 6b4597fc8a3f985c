"""The books through the API: booking fills and comparing the custodian's snapshot
(``poise reconcile``), the breaks that hold accounts and resolving one (``poise
breaks``), and a household's performance and tax year (``poise report``).

Who: booking and resolving are operations' and admins' acts, as the commands allow
(403 to the others). The firm's breaks list names every household's accounts: the
firm-wide roles'. An account's breaks, and a household's performance and tax year, are
the household's: an adviser of it, its client, and the firm-wide roles (404 to anyone
else, as for one that does not exist).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from poise.api.deps import EngineDep, SettingsDep
from poise.api.idempotency import OnceDep
from poise.api.routes.answers import (
    FORBIDDEN,
    NOT_FOUND,
    SIGNED_IN,
    WRITTEN,
    Document,
    Exact,
    answer,
    created,
)
from poise.api.scoping import ScopedDep, firm_only, only, scoped_router
from poise.domain.errors import NotFoundError, ValidationError
from poise.domain.relief import Method
from poise.domain.users import Role
from poise.store import repo
from poise.store import tables as t
from poise.workflow.books import book_fills
from poise.workflow.custodian import reconcile_custodian, resolve_break
from poise.workflow.performance import attribution_of, load_book, performance
from poise.workflow.statements import latest_quarter, quarter_named, statement_data, statement_pdf
from poise.workflow.taxes import tax_year

__all__ = ["BOOKKEEPERS", "router"]

BOOKKEEPERS = frozenset({Role.OPERATIONS, Role.ADMIN})  # as `poise reconcile --as` allows

router = scoped_router(tags=["books"], responses={**SIGNED_IN, **FORBIDDEN})


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1, max_length=2000, pattern=r"^[^\x00]*$", description="Why, in words."
    )


class ReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = Field(default=None, description="The snapshot day; default the latest.")


class BreakOut(Document):
    account_id: str
    break_id: str
    opened: date
    closed: date | None  # None: open, and the account held
    kind: str | None  # quantity, cash, unknown_position, price; None: loaded from a file
    security_id: str | None
    books: Exact | None
    custodian: Exact | None
    cause: str | None  # its likely cause, where one could be told
    description: str | None
    resolved_by: str | None  # a user's id, or "system": cleared by a later snapshot
    reason: str | None


class BreaksOut(Document):
    items: list[BreakOut]


class RefusedOut(Document):
    txn_id: str
    account_id: str
    reason: str


class BookedOut(Document):
    executions: int
    accounts: int
    realised: int
    gain: Exact
    cash: Exact
    refused: list[RefusedOut]


class FoundOut(Document):
    account_id: str
    kind: str
    security_id: str | None
    books: Exact
    custodian: Exact
    cause: str | None


class CustodianOut(Document):
    as_of: date | None
    accounts: int
    opened: int
    cleared: int
    breaks: list[FoundOut]


class ReconciledOut(Document):
    booked: BookedOut
    custodian: CustodianOut


class PerformanceRow(Document):
    level: str  # household, account
    name: str
    start_value: Exact
    end_value: Exact
    flows: Exact
    twr: float | None
    mwr: float | None
    mtd: float | None
    qtd: float | None
    ytd: float | None
    y1: float | None = Field(alias="1y")
    y3: float | None = Field(alias="3y")
    y5: float | None = Field(alias="5y")
    inception: float | None
    volatility: float | None
    max_drawdown: float | None


class PerformanceOut(Document):
    household_id: str
    start: date | None = Field(alias="from")  # None: fewer than two days priced
    end: date | None = Field(alias="to")
    basis: str  # net, gross
    rows: list[PerformanceRow]


class GainsOut(Document):
    short_term: Exact
    long_term: Exact
    total: Exact
    disallowed: Exact


class Row8949Out(Document):
    box: str
    description: str
    acquired: date
    sold: date
    proceeds: Exact
    basis: Exact
    code: str
    adjustment: Exact
    gain: Exact
    account_id: str
    lot_id: str


class LineOut(Document):
    line: str
    box: str
    proceeds: Exact
    basis: Exact
    adjustment: Exact
    gain: Exact


class TaxOut(Document):
    household_id: str
    year: int
    gains: GainsOut
    rows: list[Row8949Out]
    schedule_d: list[LineOut]


RESOLVED = {
    **WRITTEN,
    **NOT_FOUND,
    403: FORBIDDEN[403] | {"description": "Only operations and admins keep the books."},
    409: WRITTEN[409]
    | {
        "description": "A break already closed; or a request with this Idempotency-Key is"
        " still being answered."
    },
}
RECONCILED = {
    **WRITTEN,
    403: FORBIDDEN[403] | {"description": "Only operations and admins keep the books."},
}


def _break(row: Any) -> dict[str, Any]:
    return {
        "account_id": row.account_id,
        "break_id": row.break_id,
        "opened": row.opened.isoformat(),
        "closed": row.closed.isoformat() if row.closed else None,
        "kind": row.kind,
        "security_id": row.security_id,
        "books": None if row.books is None else str(row.books),
        "custodian": None if row.custodian is None else str(row.custodian),
        "cause": row.cause,
        "description": row.description,
        "resolved_by": row.resolved_by,
        "reason": row.reason,
    }


def _breaks(engine: sa.Engine, *, account_id: str | None, closed: bool) -> list[dict[str, Any]]:
    b = t.breaks
    query = sa.select(b).order_by(b.c.opened.desc(), b.c.account_id, b.c.break_id)
    if account_id is not None:
        query = query.where(b.c.account_id == account_id)
    if not closed:
        query = query.where(b.c.closed.is_(None))
    with engine.connect() as connection:
        return [_break(row) for row in connection.execute(query)]


@router.get(
    "/breaks",
    response_model=BreaksOut,
    summary="The firm's reconciliation breaks",
    dependencies=[Depends(firm_only)],
)
def get_breaks(
    request: Request,
    who: ScopedDep,
    engine: EngineDep,
    closed: Annotated[bool, Query(description="Closed breaks too, and why.")] = False,
) -> Response:
    """Open breaks (``closed=true``: every break), newest first: an account with an open
    break is held by the monitor and not traded. The firm-wide roles."""
    items = _breaks(engine, account_id=None, closed=closed)
    return answer(request, BreaksOut, {"items": items})


@router.get(
    "/accounts/{account_id}/breaks",
    response_model=BreaksOut,
    summary="An account's breaks",
    responses=NOT_FOUND,
)
def get_account_breaks(
    request: Request,
    account_id: str,
    who: ScopedDep,
    engine: EngineDep,
    closed: Annotated[bool, Query(description="Closed breaks too, and why.")] = False,
) -> Response:
    """The account's breaks, for whoever may see its household."""
    items = _breaks(engine, account_id=account_id, closed=closed)
    return answer(request, BreaksOut, {"items": items})


@router.post(
    "/accounts/{account_id}/breaks/{break_id}/resolve",
    response_model=BreakOut,
    summary="Resolve a break",
    responses=RESOLVED,
    dependencies=[Depends(only(BOOKKEEPERS, verb="keep the books"))],
)
def post_resolve(
    account_id: str, break_id: str, body: Reason, who: ScopedDep, engine: EngineDep,
    once: OnceDep,
) -> Response:  # fmt: skip
    """Close an open break with why, as ``poise breaks --resolve``: in the audit ledger,
    and the account is no longer held for it; ``409`` for one already closed.
    Operations and admins."""

    def make() -> Response:
        resolve_break(
            engine, account_id=account_id, break_id=break_id, actor=who.user.user_id,
            reason=body.reason,
        )  # fmt: skip
        (found,) = [
            b for b in _breaks(engine, account_id=account_id, closed=True)
            if b["break_id"] == break_id
        ]  # fmt: skip
        return created(BreakOut, found, f"accounts/{account_id}/breaks", status=200)

    return once(make)


@router.post(
    "/reconcile",
    response_model=ReconciledOut,
    summary="Book the fills and compare the custodian's snapshot",
    responses=RECONCILED,
    dependencies=[Depends(only(BOOKKEEPERS, verb="keep the books"))],
)
def post_reconcile(
    body: ReconcileIn, engine: EngineDep, settings: SettingsDep, once: OnceDep
) -> Response:
    """What ``poise reconcile`` does after loading the custodian's files (load them with
    ``POST /files``): every fill not yet in the books booked, then each account's
    custodian snapshot compared with the books. Operations and admins."""

    def make() -> Response:
        done = book_fills(
            engine, default_method=Method(settings.relief_method), workers=settings.workers
        )
        found = reconcile_custodian(engine, as_of=body.as_of, tolerance=settings.price_tolerance)
        return created(
            ReconciledOut,
            {
                "booked": {
                    "executions": done.executions,
                    "accounts": done.accounts,
                    "realised": done.realised,
                    "gain": str(done.gain),
                    "cash": str(done.cash),
                    "refused": [
                        {"txn_id": r.txn_id, "account_id": r.account_id, "reason": r.reason}
                        for r in done.refused
                    ],
                },
                "custodian": {
                    "as_of": found.as_of.isoformat() if found.as_of else None,
                    "accounts": found.accounts,
                    "opened": found.opened,
                    "cleared": found.cleared,
                    "breaks": [
                        {
                            "account_id": b.account_id,
                            "kind": b.kind.value,
                            "security_id": b.security_id,
                            "books": str(b.books),
                            "custodian": str(b.custodian),
                            "cause": b.cause or None,
                        }
                        for b in found.breaks
                    ],
                },
            },
            "breaks",
            status=200,
        )

    return once(make)


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


@router.get(
    "/households/{household_id}/performance",
    response_model=PerformanceOut,
    summary="A household's performance",
    responses=NOT_FOUND,
)
def get_performance(
    request: Request,
    household_id: str,
    who: ScopedDep,
    engine: EngineDep,
    start: Annotated[date | None, Query(alias="from", description="First day.")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day.")] = None,
    gross: Annotated[bool, Query(description="Gross of fees; default net.")] = False,
) -> Response:
    """The household and each of its accounts valued every day: time- and
    money-weighted returns, the periods, volatility and drawdown (docs/reports.md)."""
    a = t.accounts
    with engine.connect() as connection:
        ids = list(
            connection.execute(
                sa.select(a.c.account_id).where(a.c.household_id == household_id)
            ).scalars()
        )
        if not ids:
            raise NotFoundError(f"household {household_id} has no accounts")
        last = connection.execute(sa.select(sa.func.max(t.prices.c.as_of))).scalar()
        if last is None:
            raise ValidationError("the store holds no prices: nothing can be valued")
        end = end or last.date()
        start = start or end.replace(year=end.year - 3)
        book, groups = load_book(connection, start=start, end=last.date(), account_ids=ids)
    rows: list[dict[str, Any]] = []
    if len([d for d in book.days if d <= end]) < 2:  # nothing to value a return over
        empty = {"household_id": household_id, "from": None, "to": None,
                 "basis": "gross" if gross else "net", "rows": rows}  # fmt: skip
        return answer(request, PerformanceOut, empty)
    for level in ("household", "account"):
        found = performance(book, groups, level=level, gross=gross, until=end)
        for i, name in enumerate(found.names):
            rows.append(
                {
                    "level": level,
                    "name": name,
                    "start_value": f"{found.start[i]:.2f}",
                    "end_value": f"{found.end[i]:.2f}",
                    "flows": f"{found.flows[i]:.2f}",
                    "twr": _ratio(found.twr[i]),
                    "mwr": _ratio(found.money_weighted(i)),
                    **{p: _ratio(None if v is None else v[i]) for p, v in found.periods.items()},
                    "volatility": _ratio(found.volatility[i]),
                    "max_drawdown": _ratio(found.drawdown[i]),
                }
            )
    document = {
        "household_id": household_id,
        "from": found.days[0].isoformat(),
        "to": found.days[-1].isoformat(),
        "basis": "gross" if gross else "net",
        "rows": rows,
    }
    return answer(request, PerformanceOut, document)


@router.get(
    "/households/{household_id}/tax",
    response_model=TaxOut,
    summary="A household's tax year",
    responses=NOT_FOUND,
)
def get_tax(
    request: Request,
    household_id: str,
    who: ScopedDep,
    engine: EngineDep,
    year: Annotated[
        int | None,
        Query(ge=1900, le=2200, description="The tax year; default that of the latest sale."),
    ] = None,
) -> Response:
    """Realised gains by term, Form 8949's rows (code W for wash sales) and Schedule D's
    lines (docs/reports.md)."""
    with engine.connect() as connection:
        if year is None:
            last = connection.execute(sa.select(sa.func.max(t.realised_gains.c.sold))).scalar()
            year = last.year if last is not None else datetime.now(UTC).year
        found = tax_year(connection, household_id=household_id, year=year)
    document = {
        "household_id": household_id,
        "year": year,
        "gains": {
            "short_term": str(found.gains.short),
            "long_term": str(found.gains.long),
            "total": str(found.gains.total),
            "disallowed": str(found.gains.disallowed),
        },
        "rows": [
            {
                "box": r.box,
                "description": r.description,
                "acquired": r.acquired.isoformat(),
                "sold": r.sold.isoformat(),
                "proceeds": str(r.proceeds),
                "basis": str(r.basis),
                "code": r.code,
                "adjustment": str(r.adjustment),
                "gain": str(r.gain),
                "account_id": r.account_id,
                "lot_id": r.lot_id,
            }
            for r in found.rows
        ],
        "schedule_d": [
            {
                "line": x.line,
                "box": x.box,
                "proceeds": str(x.proceeds),
                "basis": str(x.basis),
                "adjustment": str(x.adjustment),
                "gain": str(x.gain),
            }
            for x in found.lines
        ],
    }
    return answer(request, TaxOut, document)


@router.get(
    "/households/{household_id}/statement",
    summary="A household's quarterly statement, as PDF",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The statement, printed."},
        **NOT_FOUND,
    },
)
def get_statement(
    household_id: str,
    who: ScopedDep,
    engine: EngineDep,
    settings: SettingsDep,
    quarter: Annotated[
        str | None,
        Query(pattern=r"^\d{4}[Qq][1-4]$", description="e.g. 2022Q4; default the latest quarter."),
    ] = None,
) -> Response:
    """The statement ``poise report statement`` prints (docs/reports.md): holdings,
    allocation, performance against the model and the benchmark, activity, gains,
    fees, and the trades made and why."""
    with engine.connect() as connection:
        start, end = quarter_named(quarter) if quarter else latest_quarter(connection)
        data = statement_data(connection, household_id=household_id, start=start, end=end,
                              benchmark=settings.benchmark)  # fmt: skip
    name = f"{household_id}-{start.year}Q{(start.month - 1) // 3 + 1}.pdf"
    return Response(
        statement_pdf(data),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class SegmentOut(Document):
    asset_class: str
    portfolio_weight: float
    model_weight: float
    portfolio_return: float
    model_return: float
    allocation: float
    selection: float
    interaction: float


class AttributionOut(Document):
    household_id: str
    model_id: str | None
    start: date = Field(alias="from")  # the period's eve
    end: date = Field(alias="to")
    portfolio: float | None  # None: fewer than two days priced in the period
    model: float | None
    active: float | None
    segments: list[SegmentOut]
    realised: Exact | None
    harvested: Exact | None
    estimated_tax: Exact | None


@router.get(
    "/households/{household_id}/attribution",
    response_model=AttributionOut,
    summary="A household against its model, by asset class",
    responses=NOT_FOUND,
)
def get_attribution(
    request: Request,
    household_id: str,
    who: ScopedDep,
    engine: EngineDep,
    start: Annotated[date | None, Query(alias="from", description="The eve; a year back.")] = None,
    end: Annotated[date | None, Query(alias="to", description="The last day.")] = None,
) -> Response:
    """Brinson–Fachler effects by asset class against the household's model, and what
    its sales realised and cost in tax, as ``poise report attribution`` (docs/reports.md);
    nothing but the period when fewer than two days are priced in it."""
    with engine.connect() as connection:
        last = connection.execute(sa.select(sa.func.max(t.prices.c.as_of))).scalar()
        if last is None:
            raise ValidationError("the store holds no prices: nothing can be valued")
        end = end or last.date()
        start = start or end.replace(year=end.year - 1)
        try:
            found = attribution_of(connection, household_id=household_id, start=start, end=end)
        except ValidationError:
            repo.household(connection, household_id=household_id)  # unknown: 404
            empty: dict[str, Any] = {
                "household_id": household_id, "model_id": None, "from": start.isoformat(),
                "to": end.isoformat(), "portfolio": None, "model": None, "active": None,
                "segments": [], "realised": None, "harvested": None, "estimated_tax": None,
            }  # fmt: skip
            return answer(request, AttributionOut, empty)
    a = found.attribution
    document = {
        "household_id": household_id, "model_id": found.model_id,
        "from": found.start.isoformat(), "to": found.end.isoformat(),
        "portfolio": round(a.portfolio, 6), "model": round(a.benchmark, 6),
        "active": round(a.active, 6),
        "segments": [
            {"asset_class": c, "portfolio_weight": round(wp, 6), "model_weight": round(wb, 6),
             "portfolio_return": round(rp, 6), "model_return": round(rb, 6),
             "allocation": round(x, 6), "selection": round(y, 6), "interaction": round(z, 6)}
            for c, wp, wb, rp, rb, x, y, z in zip(
                a.segments, found.portfolio_weights, found.model_weights,
                found.portfolio_returns, found.model_returns, a.allocation, a.selection,
                a.interaction, strict=True,
            )
        ],
        "realised": str(found.realised), "harvested": str(found.harvested),
        "estimated_tax": str(found.estimated_tax),
    }  # fmt: skip
    return answer(request, AttributionOut, document)
