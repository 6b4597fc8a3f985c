"""The pages' routes. Each page needs a signed-in user (else the browser is sent to
sign in and brought back) and shows only what the user's scope holds: another
household's page is not found, as one that does not exist."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from poise.api.auth import Principal, authenticate, client_address
from poise.api.deps import EngineDep, SettingsDep
from poise.domain.errors import AuthError, ConfigError, ForbiddenError, NotFoundError
from poise.domain.users import REBALANCERS, Role, User
from poise.web import views
from poise.web.client import client_view
from poise.web.session import WebUser, check_csrf, csrf_token, flashes, sign_in, sign_out

__all__ = ["STATIC", "landing", "router", "safe_next", "sign_in_page", "templates"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["csrf_token"] = csrf_token
templates.env.globals["flashes"] = flashes


def _money(value: Any) -> str:
    return "" if value is None else f"{value:,.2f}"


def _pct(value: float | None, places: int = 1) -> str:
    return "" if value is None else f"{value * 100:.{places}f}%"


def _day(value: Any) -> str:
    return value.strftime("%Y-%m-%d") if hasattr(value, "strftime") else str(value)[:10]


templates.env.filters["money"] = _money
templates.env.filters["day"] = _day
templates.env.filters["pct"] = _pct

router = APIRouter(include_in_schema=False)


def _installed(package: str, *parts: str) -> Path:
    """A file of an installed package (htmx's, plotly's): found, never fetched."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ConfigError(f"the package {package} is not installed: reinstall poise")
    return Path(spec.origin).parent.joinpath(*parts)


def _static_files() -> dict[str, Path]:
    return {
        "htmx.min.js": _installed("js_lib_htmx", "static", "htmx", "htmx.min.js"),
        "plotly.min.js": _installed("plotly", "package_data", "plotly.min.js"),
        "poise.css": HERE / "static" / "poise.css",
        "live.js": HERE / "static" / "live.js",
    }


STATIC = _static_files()


@router.get("/static/{name}")
def static(name: str) -> Response:
    path = STATIC.get(name)
    if path is None:
        raise NotFoundError(f"no file {name}")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})


def safe_next(text: str | None) -> str:
    """Only a path of this site: a sign-in never sends the browser elsewhere."""
    if not text:
        return "/"
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not text.startswith("/") or text.startswith("//"):
        return "/"
    return text


def landing(user: User, next_path: str | None) -> str:
    """Where a user just signed in goes: a client to their own household, anyone else
    back to the page they asked for."""
    return "/client" if user.role is Role.CLIENT else safe_next(next_path)


def sign_in_page(
    request: Request, *, next_path: str | None, error: str | None = None, username: str = "",
    status_code: int = 200,
) -> Response:  # fmt: skip
    """The sign-in page, with ``error`` said if any; with the button of the firm's
    identity provider where one is configured (:mod:`poise.web.oidc`)."""
    return templates.TemplateResponse(
        request, "sign_in.html",
        {"next": safe_next(next_path), "error": error, "user": None, "username": username,
         "sign_in_with": getattr(request.app.state, "sign_in_with", None)},
        status_code=status_code,
    )  # fmt: skip


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form_page(request: Request, next: str | None = None) -> Response:
    return sign_in_page(request, next_path=next)


@router.post("/sign-in", response_class=HTMLResponse)
def sign_in_form(
    request: Request,
    engine: EngineDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    from datetime import UTC, datetime  # noqa: PLC0415

    check_csrf(request, csrf)
    try:
        user = authenticate(
            engine, username, password, address=client_address(request), now=datetime.now(UTC)
        )
    except AuthError as exc:
        return sign_in_page(
            request, next_path=next, error=str(exc), username=username, status_code=401
        )
    sign_in(request, user)
    return RedirectResponse(landing(user, next), status_code=303)


@router.post("/sign-out")
def sign_out_form(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    sign_out(request)
    return RedirectResponse("/sign-in", status_code=303)


@router.get("/", response_class=HTMLResponse)
def firm_page(request: Request, who: WebUser, engine: EngineDep) -> Response:
    if who.user.role is Role.CLIENT:
        return RedirectResponse("/client", status_code=303)
    firm = views.firm_view(engine, who.scope)
    return templates.TemplateResponse(request, "firm.html", {"user": who.user, "firm": firm})


@router.get("/households/{household_id}", response_class=HTMLResponse)
def household_page(
    request: Request, household_id: str, who: WebUser, engine: EngineDep
) -> Response:
    if not who.scope.sees(household_id):
        raise NotFoundError(f"no household {household_id}")
    view = views.household_view(engine, household_id)
    return templates.TemplateResponse(request, "household.html", {"user": who.user, "view": view})


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
def account_page(request: Request, account_id: str, who: WebUser, engine: EngineDep) -> Response:
    view = views.account_view(engine, account_id)
    if not who.scope.sees(view.account.household_id):
        raise NotFoundError(f"no account {account_id}")
    return templates.TemplateResponse(request, "account.html", {"user": who.user, "view": view})


@router.get("/accounts/{account_id}/rules", response_class=HTMLResponse)
def account_rules_page(
    request: Request, account_id: str, who: WebUser, engine: EngineDep, settings: SettingsDep
) -> Response:
    """The compliance rules in force for the account, layer by layer."""
    from poise.workflow.comply import load_rules, rules_of_account, spec_json  # noqa: PLC0415

    if not who.scope.sees(views.household_of_account(engine, account_id)):
        raise NotFoundError(f"no account {account_id}")
    found = rules_of_account(engine, account_id=account_id, book=load_rules(settings))
    rules = [spec_json(spec) for spec in found.specs]
    return templates.TemplateResponse(
        request, "account_rules.html", {"user": who.user, "found": found, "rules": rules}
    )


@router.post("/accounts/{account_id}/rebalance", response_class=HTMLResponse)
def rebalance_now(
    request: Request, account_id: str, who: WebUser, engine: EngineDep,
    csrf: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Every scenario for the account now (as of the latest prices), the full optimum
    kept as its proposal, the others beside it."""
    check_csrf(request, csrf)
    view = views.account_view(engine, account_id)
    if not who.scope.sees(view.account.household_id):
        raise NotFoundError(f"no account {account_id}")
    if who.user.role not in REBALANCERS:
        raise ForbiddenError("only an adviser, a portfolio manager or operations rebalances")
    found = views.rebalance_view(engine, account_id, prepared_by=who.user.user_id)
    approval = _panel(request, who, found.proposal["proposal_id"])
    return templates.TemplateResponse(
        request, "proposal.html",
        {"user": who.user, "view": found, "account": view.account, "approval": approval},
    )  # fmt: skip


@router.get("/proposals/{proposal_id:path}", response_class=HTMLResponse)
def proposal_page(request: Request, proposal_id: str, who: WebUser, engine: EngineDep) -> Response:
    found = views.proposal_view(engine, proposal_id)
    if not who.scope.sees(found.household_id):
        raise NotFoundError(f"no proposal {proposal_id}")
    view = views.account_view(engine, found.account_id)
    approval = _panel(request, who, proposal_id)
    return templates.TemplateResponse(
        request, "proposal.html",
        {"user": who.user, "view": found, "account": view.account, "approval": approval},
    )  # fmt: skip


def _panel(request: Request, who: Principal, proposal_id: str) -> Any:
    """The proposal's approval panel (:mod:`poise.web.approvals`)."""
    from poise.web.approvals import panel_of  # noqa: PLC0415 - it imports this module

    return panel_of(request, who, proposal_id)


@router.get("/client", response_class=HTMLResponse)
def client_page(request: Request, who: WebUser, engine: EngineDep) -> Response:
    if who.user.role is not Role.CLIENT or who.user.household_id is None:
        return RedirectResponse("/", status_code=303)
    view = client_view(engine, who.user.household_id)
    return templates.TemplateResponse(request, "client.html", {"user": who.user, "view": view})


def sign_in_redirect(path: str) -> RedirectResponse:
    return RedirectResponse(f"/sign-in?next={quote(path)}", status_code=303)
