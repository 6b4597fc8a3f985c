"""Who is asking, on every request, and what they may see: one dependency.

A request carries ``Authorization: Bearer <token>`` — a personal access token
(``poise_pat_…``, made by ``poise users token``) or an access token (a JWT from
``POST /api/v1/auth/token``, 15 minutes). :func:`principal` finds the user behind it
(refused: unknown, revoked, expired, a password changed since, a user disabled),
checks the token's scopes allow the method (``read``: GET; ``write``: anything), and
answers with the user and their :class:`~poise.domain.users.Scope` — the households
every query of the request is limited to. No route reads the store for a user's data
without it.

Every API request is counted against its caller's rate (``POISE_API_RATE`` a minute,
:mod:`poise.api.limits`): the user's, once the credentials hold — however many tokens
they use — else the address's, so that a caller sending credentials that do not hold
is slowed as well.

Signing in (``POST /api/v1/auth/token``, the OAuth2 password flow) counts wrong
passwords: five in a row lock the user out for 15 minutes, and a caller's address may
try at most :data:`ATTEMPTS` sign-ins a minute, whoever it names. An unknown user and
a wrong password read the same, and cost the same time (a hash is checked either way).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from poise.api import security
from poise.api.deps import EngineDep
from poise.api.limits import TooManyRequestsError, Window
from poise.domain.errors import AuthError, ForbiddenError, NotFoundError, PoiseError
from poise.domain.users import Scope, User, scope_of, username_of
from poise.store import repo

__all__ = [
    "ATTEMPTS",
    "Principal",
    "PrincipalDep",
    "admit",
    "authenticate",
    "client_address",
    "identify",
    "router",
]

ATTEMPTS = 20  # sign-ins a minute from one address
TOUCH_EVERY = 60  # seconds: a token's last use is written at most this often
_making = threading.Lock()  # the application's rate window, made by the first request

router = APIRouter(tags=["sign-in"])


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, what their credentials allow, and what they may see."""

    user: User
    scopes: frozenset[str]
    scope: Scope
    via: str  # "token" (a personal access token) or "jwt"


def _key(request: Request, engine: sa.Engine) -> str:
    key: str | None = getattr(request.app.state, "signing_key", None)
    if key is None:
        with engine.execution_options(writes=True).begin() as connection:
            key = security.signing_key(connection)
        request.app.state.signing_key = key
    return key


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise AuthError("sign in: send Authorization: Bearer <token>")
    return token.strip()


def _from_pat(
    text: str, connection: sa.Connection, engine: sa.Engine, now: datetime
) -> tuple[User, frozenset[str]]:

    parsed = security.parse_token(text)
    if parsed is None:
        raise AuthError("the token is not valid")
    token_id, secret = parsed
    try:
        token = repo.token(connection, token_id=token_id)
        user = repo.user(connection, user_id=token.user_id)
    except NotFoundError:
        raise AuthError("the token is not valid") from None
    if not security.secret_matches(secret, token.secret_hash) or not token.live(now):
        raise AuthError("the token is not valid, or has expired or been revoked")
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > TOUCH_EVERY:
        with engine.execution_options(writes=True).begin() as writing:
            repo.touch_token(writing, token_id=token_id, at=now)
    return user, token.scopes


def _from_jwt(text: str, connection: sa.Connection, key: str) -> tuple[User, frozenset[str]]:

    claims = security.read_jwt(text, key=key)
    held = repo.credentials_of(connection, user_id=str(claims["sub"]))
    if held is None:
        raise AuthError("the access token is not valid")
    if security.issued_before(claims, held.password_changed_at):
        raise AuthError("the password has changed since this access token was issued")
    return held.user, security.parse_scopes(str(claims["scope"]))


def principal(request: Request, engine: EngineDep) -> Principal:
    """The dependency every route but health and sign-in has: see the module."""
    found: Principal | None = getattr(request.state, "principal", None)
    if found is None:
        with engine.connect() as connection:
            found = identify(request, connection)
    return found


def identify(request: Request, connection: sa.Connection) -> Principal:
    """Who is asking, found through ``connection`` — the scope check's, which asks this
    itself, so that both take one hop to the thread pool and one connection. Asked
    again in the same request, the answer found the first time."""
    found: Principal | None = getattr(request.state, "principal", None)
    if found is not None:
        return found
    engine: sa.Engine = request.app.state.engine
    now = datetime.now(UTC)
    try:
        text = _bearer(request)
        if text.startswith(security.TOKEN_PREFIX):
            user, scopes = _from_pat(text, connection, engine, now)
            via = "token"
        else:
            user, scopes = _from_jwt(text, connection, _key(request, engine))
            via = "jwt"
        if user.disabled:
            raise AuthError("this user is disabled")
    except AuthError:
        admit(request, f"address {client_address(request)}")
        raise
    admit(request, f"user {user.user_id}")
    if not security.permits(scopes, request.method):
        raise ForbiddenError(f"this token may only {' and '.join(sorted(scopes))}")
    request.state.user_id = user.user_id
    found = request.state.principal = Principal(user, scopes, scope_of(user), via)
    return found


def admit(request: Request, caller: str) -> None:
    """Count a request of ``caller`` against the API's rate (``POISE_API_RATE`` a
    minute, in this process); a :class:`TooManyRequestsError` when they have had it."""
    state = request.app.state
    rate: Window | None = getattr(state, "api_rate", None)
    if rate is None:
        if state.settings.api_rate <= 0:
            return
        with _making:  # the first requests may come on several threads at once
            rate = getattr(state, "api_rate", None) or Window(state.settings.api_rate)
            state.api_rate = rate
    wait = rate.wait(caller)
    if wait:
        raise TooManyRequestsError(
            f"too many requests: {rate.limit} a minute; try again in {wait} s",
            retry_after=wait,
        )


PrincipalDep = Annotated[Principal, Depends(principal)]


# ── signing in ───────────────────────────────────────────────────────────────


class _Attempts(Window):
    """Sign-ins by address in the last minute, in this process."""

    def __init__(self) -> None:
        super().__init__(ATTEMPTS)


_attempts = _Attempts()


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int  # seconds


@router.post(
    "/auth/token",
    response_model=AccessToken,
    summary="Sign in with a username and password: an access token for 15 minutes",
    responses={
        401: {"description": "wrong username or password, or locked out"},
        429: {"description": "too many sign-ins from this address"},
    },
)
def sign_in(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], engine: EngineDep
) -> AccessToken:
    admit(request, f"address {client_address(request)}")
    now = datetime.now(UTC)
    user = authenticate(
        engine, form.username, form.password, address=client_address(request), now=now
    )
    key = _key(request, engine)
    scopes = " ".join(security.SCOPES)
    token = security.issue_jwt(user, key=key, scopes=scopes, now=now)
    return AccessToken(access_token=token, expires_in=security.JWT_MINUTES * 60)


def client_address(request: Request) -> str:
    """The caller's address, as sign-ins are counted by — and requests whose
    credentials do not hold."""
    return request.client.host if request.client else "-"


def authenticate(
    engine: sa.Engine, username: str, password: str, *, address: str, now: datetime
) -> User:
    """The user a username and password sign in, for the API and the web pages alike:
    throttled by address, wrong passwords counted (and kept, even though the sign-in is
    refused), a user locked out or disabled refused; an :class:`AuthError` that says no
    more than it must."""
    wait = _attempts.wait(address)
    if wait:
        raise TooManyRequestsError(
            f"too many sign-ins from this address: try again in {wait} s", retry_after=wait
        )
    try:
        name = username_of(username)
    except PoiseError:
        name = ""
    refused = ""  # why, once the transaction that counted the wrong password is kept
    with engine.execution_options(writes=True).begin() as connection:
        held = repo.credentials(connection, username=name) if name else None
        ok, rehashed = security.verify_password(
            password, None if held is None else held.password_hash
        )
        if held is None or held.user.disabled:
            refused = "wrong username or password"
        elif security.locked(held.user, now):
            refused = "too many wrong passwords: this user is locked out for a while"
        elif not ok:
            failures = repo.record_failed_login(connection, user_id=held.user.user_id)
            until = security.lockout(failures, now)
            if until is not None:
                repo.lock_until(connection, user_id=held.user.user_id, until=until)
            refused = "wrong username or password"
        else:
            repo.clear_failed_logins(connection, user_id=held.user.user_id)
            if rehashed is not None:
                repo.rehash_password(connection, user_id=held.user.user_id, password_hash=rehashed)
    if refused or held is None:
        raise AuthError(refused or "wrong username or password")
    return held.user


class Me(BaseModel):
    user_id: str
    username: str
    name: str
    role: str
    scopes: list[str]
    households: list[str] | None  # None: the whole firm


@router.get("/auth/me", response_model=Me, summary="Who the credentials are")
def me(who: PrincipalDep) -> Me:
    u = who.user
    return Me(
        user_id=u.user_id,
        username=u.username,
        name=u.name,
        role=u.role.value,
        scopes=sorted(who.scopes),
        households=None if who.scope.firm else sorted(who.scope.households),
    )
