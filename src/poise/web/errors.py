"""The pages' errors: a page that needs a signed-in user sends the browser to sign in
(and back); a typed error on a page is an HTML page with its status, not JSON."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from poise.api.problems import http_problem, poise_problem
from poise.domain.errors import PoiseError
from poise.web.session import SignInRequiredError

__all__ = ["install"]

API = "/api/"


def install(app: FastAPI) -> None:
    async def sign_in_first(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequiredError)
        return RedirectResponse(f"/sign-in?next={quote(exc.next_path)}", status_code=303)

    def page(request: Request, status: int, detail: str) -> Response:
        from poise.web.pages import templates  # noqa: PLC0415

        title = HTTPStatus(status).phrase
        return templates.TemplateResponse(
            request, "error.html", {"title": title, "detail": detail, "user": None},
            status_code=status,
        )  # fmt: skip

    async def poise_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(API):
            return await poise_problem(request, exc)
        assert isinstance(exc, PoiseError)
        return page(request, exc.http_status, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(API):
            return await http_problem(request, exc)
        assert isinstance(exc, StarletteHTTPException)
        return page(request, exc.status_code, str(exc.detail))

    app.add_exception_handler(SignInRequiredError, sign_in_first)
    app.add_exception_handler(PoiseError, poise_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
