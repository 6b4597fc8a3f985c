"""The books' pages: ``/books`` — the fills waiting to be booked and the reconciliation
breaks holding accounts, with **Book and compare** and **Resolve** for operations and
admins — and a household's ``/households/{id}/performance``: its growth against the
money put in, each account's returns, and its tax year (Form 8949's rows).

What they show is what the API answers (:mod:`poise.api.routes.books`), by the same
workflow functions and under the same rules: ``/books`` is the firm-wide roles' (404 to
the others, as one that does not exist); booking and resolving are operations' and
admins'; a household's performance is its people's.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from poise.api.auth import Principal
from poise.api.deps import EngineDep, SettingsDep
from poise.api.routes.books import BOOKKEEPERS
from poise.domain.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from poise.domain.relief import Method
from poise.domain.users import FIRM_WIDE
from poise.store import repo
from poise.store import tables as t
from poise.store.repo.fills import unbooked
from poise.web.pages import templates
from poise.web.session import WebUser, check_csrf, flash
from poise.web.views import script_json
from poise.workflow.books import book_fills
from poise.workflow.custodian import reconcile_custodian, resolve_break
from poise.workflow.performance import AttributionReport, attribution_of, load_book, performance
from poise.workflow.statements import latest_quarter, quarter_named, statement_data, statement_pdf
from poise.workflow.taxes import tax_year

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
HOME = "/books"
BRAND, MUTED = "#2458a6", "#8a94a6"


def _firm_wide(who: Principal) -> None:
    if who.user.role not in FIRM_WIDE:
        raise NotFoundError(f"no page {HOME}")


def _bookkeeper(who: Principal) -> None:
    _firm_wide(who)
    if who.user.role not in BOOKKEEPERS:
        raise ForbiddenError("only operations and admins keep the books")


@router.get(HOME, response_class=HTMLResponse)
def books_page(request: Request, who: WebUser, engine: EngineDep) -> Response:
    """Fills waiting to be booked, and the open breaks holding accounts."""
    _firm_wide(who)
    b = t.breaks
    with engine.connect() as connection:
        waiting = unbooked(connection)
        breaks = [
            dict(row._mapping)
            for row in connection.execute(
                sa.select(b).where(b.c.closed.is_(None)).order_by(b.c.opened.desc(), b.c.account_id)
            )
        ]
        closed = [
            dict(row._mapping)
            for row in connection.execute(
                sa.select(b).where(b.c.closed.is_not(None)).order_by(b.c.closed.desc()).limit(10)
            )
        ]
    return templates.TemplateResponse(request, "books.html", {
        "user": who.user, "waiting": len(waiting), "breaks": breaks, "closed": closed,
        "may_book": who.user.role in BOOKKEEPERS,
    })  # fmt: skip


@router.post(f"{HOME}/reconcile")
def reconcile_form(
    request: Request, who: WebUser, engine: EngineDep, settings: SettingsDep, *,
    csrf: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Book the fills and compare the custodian's latest snapshot, as ``poise
    reconcile``; the page again, saying what came of it."""
    check_csrf(request, csrf)
    _bookkeeper(who)
    done = book_fills(
        engine, default_method=Method(settings.relief_method), workers=settings.workers
    )
    found = reconcile_custodian(engine, tolerance=settings.price_tolerance)
    said = f"Booked {done.executions} fill{'' if done.executions == 1 else 's'}"
    if done.refused:
        said += f" ({len(done.refused)} not booked: {done.refused[0].reason})"
    if found.as_of is not None:
        said += (
            f"; the custodian's snapshot of {found.as_of} compared: {len(found.breaks)}"
            f" break{'' if len(found.breaks) == 1 else 's'}, {found.cleared} cleared."
        )
    flash(request, said + ("" if found.as_of else "; no custodian snapshot to compare."))
    return RedirectResponse(HOME, status_code=303)


@router.post(HOME + "/resolve")
def resolve_form(
    request: Request, who: WebUser, engine: EngineDep, *,
    csrf: Annotated[str, Form()] = "", account_id: Annotated[str, Form()] = "",
    break_id: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Resolve one break with a reason, as ``poise breaks --resolve``."""
    check_csrf(request, csrf)
    _bookkeeper(who)
    if not reason.strip():
        flash(request, "Not resolved: say why, in words.", ok=False)
        return RedirectResponse(HOME, status_code=303)
    try:
        resolve_break(engine, account_id=account_id, break_id=break_id, actor=who.user.user_id,
                      reason=reason)  # fmt: skip
    except (ConflictError, NotFoundError) as refused:
        flash(request, f"Not resolved: {refused}.", ok=False)
    else:
        flash(request, f"Resolved {account_id}/{break_id}: the account is no longer held for it.")
    return RedirectResponse(HOME, status_code=303)


def _growth_figure(days: list[str], growth: list[float]) -> dict[str, Any]:
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "name": "growth of a dollar (time-weighted)",
             "x": days, "y": growth, "line": {"color": BRAND, "width": 2},
             "hovertemplate": "%{x}: %{y:.4f}<extra></extra>"},
        ],
        "layout": {"height": 300, "margin": {"t": 10, "r": 10, "b": 40, "l": 60},
                   "xaxis": {"type": "date"},
                   "yaxis": {"title": {"text": "a dollar grew to"}, "tickformat": ".2f"},
                   "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 1,
                               "y1": 1, "line": {"color": MUTED, "dash": "dot"}}]},
    }  # fmt: skip


@router.get("/households/{household_id}/performance", response_class=HTMLResponse)
def performance_page(
    request: Request, household_id: str, who: WebUser, engine: EngineDep
) -> Response:
    """The household's returns over the last three years, each account's, and its tax
    year."""
    if not who.scope.sees(household_id):
        raise NotFoundError(f"no household {household_id}")
    a = t.accounts
    with engine.connect() as connection:
        ids = list(connection.execute(
            sa.select(a.c.account_id).where(a.c.household_id == household_id)
        ).scalars())  # fmt: skip
        if not ids:
            raise NotFoundError(f"no household {household_id}")
        last = connection.execute(sa.select(sa.func.max(t.prices.c.as_of))).scalar()
        sold = connection.execute(sa.select(sa.func.max(t.realised_gains.c.sold))).scalar()
        year = sold.year if sold is not None else datetime.now(UTC).year
        taxes = tax_year(connection, household_id=household_id, year=year)
        rows: list[dict[str, Any]] = []
        chart = ""
        if last is not None:
            end = last.date()
            book, groups = load_book(connection, start=end.replace(year=end.year - 3), end=end,
                                     account_ids=ids)  # fmt: skip
            if len(book.days) >= 2:
                for level in ("household", "account"):
                    found = performance(book, groups, level=level)
                    for i, name in enumerate(found.names):
                        rows.append({"level": level, "name": name, "start": found.start[i],
                                     "end": found.end[i], "flows": found.flows[i],
                                     "twr": found.twr[i], "mwr": found.money_weighted(i),
                                     **{p: None if v is None else v[i]
                                        for p, v in found.periods.items()},
                                     "volatility": found.volatility[i],
                                     "drawdown": found.drawdown[i]})  # fmt: skip
                    if level == "household":
                        growth = (1 + found.daily[0]).cumprod()
                        chart = script_json(_growth_figure(
                            [d.isoformat() for d in found.days], [float(g) for g in growth]
                        ))  # fmt: skip
        attribution = None
        if last is not None:
            end = last.date()
            # too little history, or nothing to value: no attribution
            with contextlib.suppress(ValidationError):
                attribution = attribution_of(
                    connection, household_id=household_id, start=end.replace(year=end.year - 1),
                    end=end,
                )  # fmt: skip
    effects = script_json(_effects_figure(attribution)) if attribution else ""
    return templates.TemplateResponse(request, "performance.html", {
        "user": who.user, "household_id": household_id, "rows": rows, "chart": chart,
        "taxes": taxes, "attribution": attribution, "effects": effects,
    })  # fmt: skip


def _effects_figure(found: AttributionReport) -> dict[str, Any]:
    """Each asset class's allocation, selection and interaction effects, as grouped bars."""
    a = found.attribution
    classes = [c.replace("_", " ") for c in a.segments]
    bars = (("allocation", a.allocation, BRAND), ("selection", a.selection, "#1e7b4a"),
            ("interaction", a.interaction, MUTED))  # fmt: skip
    return {
        "data": [
            {"type": "bar", "name": name, "x": classes, "y": [round(v * 100, 4) for v in values],
             "marker": {"color": colour},
             "hovertemplate": "%{x}: %{y:.2f} points<extra>" + name + "</extra>"}
            for name, values, colour in bars
        ],
        "layout": {"height": 280, "barmode": "group",
                   "margin": {"t": 10, "r": 10, "b": 40, "l": 60},
                   "legend": {"orientation": "h", "y": 1.15},
                   "yaxis": {"title": {"text": "percentage points"}, "zeroline": True}},
    }  # fmt: skip


@router.get("/households/{household_id}/statement.pdf")
def statement_download(
    household_id: str, who: WebUser, engine: EngineDep, settings: SettingsDep, *,
    quarter: str | None = None,
) -> Response:  # fmt: skip
    """The household's quarterly statement (the latest quarter, or ``?quarter=2022Q4``),
    printed when asked, for whoever may see the household — its client too."""
    if not who.scope.sees(household_id):
        raise NotFoundError(f"no household {household_id}")
    with engine.connect() as connection:
        repo.household(connection, household_id=household_id)  # unknown: 404
        start, end = quarter_named(quarter) if quarter else latest_quarter(connection)
        data = statement_data(connection, household_id=household_id, start=start, end=end,
                              benchmark=settings.benchmark)  # fmt: skip
    name = f"{household_id}-{start.year}Q{(start.month - 1) // 3 + 1}.pdf"
    return Response(
        statement_pdf(data),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
