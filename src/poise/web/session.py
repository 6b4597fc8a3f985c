"""Web sessions: who signed in, in a signed cookie, and the token every form carries.

The session is Starlette's signed cookie (itsdangerous), ``poise_session``: HttpOnly,
``SameSite=Strict``, ``Secure`` unless ``POISE_COOKIE_SECURE=false`` (browsers treat
``localhost`` as secure), ending :data:`~poise.settings.Settings.session_hours` after
signing in. It holds the user's id, when they signed in, and a CSRF token; a user
disabled, or whose password changed since, is signed out at their next page.

Every form posts the session's CSRF token back (``csrf`` field), compared in constant
time: a form another site makes a browser post carries none, and is refused (403).

What a form came to is said on the next page the browser opens (:func:`flash`, shown
once by the page's layout through :func:`flashes`): a form is answered with a redirect,
so that reloading the page does not send it again.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from poise.api import security
from poise.api.auth import Principal
from poise.api.deps import EngineDep
from poise.domain.errors import ForbiddenError, NotFoundError
from poise.domain.users import User, scope_of
from poise.store import repo

__all__ = [
    "Flash",
    "SignInRequiredError",
    "WebUser",
    "check_csrf",
    "csrf_token",
    "flash",
    "flashes",
    "sign_in",
    "sign_out",
]


class SignInRequiredError(Exception):
    """A page needs a signed-in user: the application sends the browser to sign in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made the first time a form needs it)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, sent: str | None) -> None:
    """Refuse a form whose token is not the session's."""
    held = request.session.get("csrf")
    if not isinstance(held, str) or not sent or not hmac.compare_digest(held, sent):
        raise ForbiddenError("the form's security token is missing or stale: reload the page")


FLASHES = 20  # messages kept for the next page at most: the cookie stays small


@dataclass(frozen=True, slots=True)
class Flash:
    """A message for the next page: ``ok`` (it was done) or not (it was refused)."""

    text: str
    ok: bool = True


def flash(request: Request, text: str, *, ok: bool = True) -> None:
    """Say ``text`` on the next page the browser opens."""
    kept = request.session.get("flash")
    messages = kept if isinstance(kept, list) else []
    request.session["flash"] = [*messages, [text, ok]][-FLASHES:]


def flashes(request: Request) -> list[Flash]:
    """The messages kept for this page, once: they are forgotten as they are shown."""
    if "session" not in request.scope:
        return []
    kept = request.session.pop("flash", None)
    if not isinstance(kept, list):
        return []
    return [Flash(str(m[0]), bool(m[1])) for m in kept if isinstance(m, list) and len(m) == 2]


def sign_in(request: Request, user: User) -> None:
    """A new session for ``user`` (a new CSRF token too: a session is never reused)."""
    request.session.clear()
    request.session.update(
        {"uid": user.user_id, "at": int(time.time()), "csrf": secrets.token_urlsafe(32)}
    )


def sign_out(request: Request) -> None:
    request.session.clear()


def _user(request: Request, engine: sa.Engine) -> Principal:
    uid, at = request.session.get("uid"), request.session.get("at")
    if not isinstance(uid, str) or not isinstance(at, int):
        raise SignInRequiredError(request.url.path)
    with engine.connect() as connection:
        try:
            user = repo.user(connection, user_id=uid)
        except NotFoundError:
            user = None
        held = None if user is None else repo.credentials(connection, username=user.username)
    changed = None if held is None else held.password_changed_at
    if user is None or user.disabled or security.issued_before({"iat": at}, changed):
        request.session.clear()
        raise SignInRequiredError(request.url.path)
    return Principal(user, frozenset(security.SCOPES), scope_of(user), "session")


def web_user(request: Request, engine: EngineDep) -> Principal:
    return _user(request, engine)


WebUser = Annotated[Principal, Depends(web_user)]
