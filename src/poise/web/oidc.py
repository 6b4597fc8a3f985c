"""Signing in to the pages through the firm's identity provider (OpenID Connect).

Off unless ``POISE_OIDC_ISSUER`` is set (:func:`provider_of`); then the sign-in page
has a button, "Sign in with …", and two routes:

- ``GET /sign-in/oidc`` sends the browser to the provider, through Authlib's Starlette
  client: the provider's endpoints and keys from its discovery document, a ``state``,
  a ``nonce`` and a PKCE verifier (S256) of Authlib's making;
- ``GET /sign-in/oidc/callback`` is where the provider sends the browser back: Authlib
  checks the ``state``, trades the code for tokens (with the verifier and the client's
  secret) and checks the ID token — its signature against the provider's keys, issuer,
  audience, expiry and nonce. poise then reads one claim (``POISE_OIDC_USERNAME_CLAIM``:
  ``email`` or ``preferred_username``) as a username, matched as every username is
  (:func:`~poise.domain.users.username_of`), and signs that user in with the very
  session a password signs in (:func:`poise.web.session.sign_in`).

The provider proves who someone is; what they may see stays poise's: a person the
store does not hold, or holds disabled, is refused with the sign-in page's error —
never added (``poise users add`` adds them, with their role and households).

**Between the two routes** the transaction (Authlib's state, nonce and verifier, and
the page asked for) is kept in a cookie of its own, ``poise_oidc``: signed and
timestamped by itsdangerous, HttpOnly, ``SameSite=Lax``, for ``/sign-in/oidc`` only,
ten minutes. The session cookie is ``SameSite=Strict``, which a browser does not send
when the provider sends it back — a navigation begun on another site — but a ``Lax``
one it does (a top-level GET). The callback forgets the transaction whatever happens:
one code, one try.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc.errors import JoseError
from starlette.concurrency import run_in_threadpool

from poise.api.deps import EngineDep
from poise.domain.errors import AuthError, ConfigError, PoiseError
from poise.domain.users import User, username_of
from poise.store import repo
from poise.web.pages import landing, safe_next, sign_in_page, templates
from poise.web.session import sign_in

if TYPE_CHECKING:
    import sqlalchemy as sa
    from fastapi import FastAPI

    from poise.settings import Settings

__all__ = ["CALLBACK", "COOKIE", "START", "Provider", "install", "provider_of", "username_from"]

START = "/sign-in/oidc"
CALLBACK = "/sign-in/oidc/callback"
COOKIE = "poise_oidc"
MINUTES = 10  # from leaving for the provider to coming back
DISCOVERY = "/.well-known/openid-configuration"
NAME = "idp"  # the provider's name among Authlib's clients (and in its state keys)
TIMEOUT = 10.0  # seconds: each call to the provider
_NEEDED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")  # discovery's

log = logging.getLogger("poise.web.oidc")


@dataclass(frozen=True, slots=True)
class Provider:
    """The firm's identity provider, as configured (``POISE_OIDC_*``)."""

    metadata_url: str  # its discovery document
    issuer: str | None  # the issuer the document must name (None: given the document only)
    client_id: str
    client_secret: str | None  # None: a public client, PKCE alone
    scopes: str
    claim: str  # the claim that is the poise username
    label: str
    redirect_uri: str | None  # None: the callback where the browser reached poise


def provider_of(settings: Settings) -> Provider | None:
    """The provider ``settings`` configure, or None: OpenID Connect is off. A
    :class:`ConfigError` for settings that cannot work, said when the service starts."""
    given = (settings.oidc_issuer or "").strip()
    if not given:
        return None
    if not given.startswith(("https://", "http://")):
        raise ConfigError(f"POISE_OIDC_ISSUER is a URL (https://…), not {given!r}")
    client_id = (settings.oidc_client_id or "").strip()
    if not client_id:
        raise ConfigError("POISE_OIDC_ISSUER is set: set POISE_OIDC_CLIENT_ID too")
    scopes = " ".join(settings.oidc_scopes.replace(",", " ").split())
    if "openid" not in scopes.split():
        raise ConfigError(f"POISE_OIDC_SCOPES must hold openid (it is {scopes!r})")
    claim = settings.oidc_username_claim.strip()
    if not claim:
        raise ConfigError("POISE_OIDC_USERNAME_CLAIM names a claim: email, say")
    secret = settings.oidc_client_secret
    if given.endswith(DISCOVERY):
        metadata_url, issuer = given, None
    else:
        metadata_url, issuer = given.rstrip("/") + DISCOVERY, given
    return Provider(
        metadata_url=metadata_url,
        issuer=issuer,
        client_id=client_id,
        client_secret=(secret.get_secret_value() or None) if secret is not None else None,
        scopes=scopes,
        claim=claim,
        label=settings.oidc_label.strip() or "single sign-on",
        redirect_uri=(settings.oidc_redirect_uri or "").strip() or None,
    )


def username_from(claims: Mapping[str, Any], claim: str) -> str:
    """The poise username that ``claims`` (an ID token's, checked) name in ``claim``;
    an :class:`AuthError` saying why not. An e-mail address the provider says it has
    not verified names no one."""
    value = claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise AuthError(f"the identity provider did not say who you are (no {claim})")
    if claim == "email" and claims.get("email_verified") is False:
        raise AuthError(f"the identity provider has not verified the address {value}")
    try:
        return username_of(value)
    except PoiseError:
        raise AuthError(f"{value} is not a poise username") from None


# ── the transaction between leaving for the provider and coming back ─────────


class _Transactions:
    """The ``poise_oidc`` cookie: a dict that Authlib keeps its state in, as it would in
    ``request.session``, signed and timestamped by itsdangerous with a key of the
    store's own (``service_secrets``: ``oidc``)."""

    def __init__(self, engine: sa.Engine, secure: bool) -> None:
        self._engine = engine
        self._secure = secure
        self._signer: URLSafeTimedSerializer | None = None

    def _key(self) -> str:
        with self._engine.execution_options(writes=True).begin() as connection:
            return repo.service_secret(
                connection, name="oidc", make=lambda: secrets.token_urlsafe(48)
            )

    async def _serializer(self) -> URLSafeTimedSerializer:
        if self._signer is None:
            key = await run_in_threadpool(self._key)
            self._signer = URLSafeTimedSerializer(key, salt="poise-oidc")
        return self._signer

    async def load(self, request: Request) -> dict[str, Any]:
        """The transaction the browser brought back; empty: none, one tampered with,
        or one older than :data:`MINUTES`."""
        text = request.cookies.get(COOKIE)
        if not text:
            return {}
        try:
            found = (await self._serializer()).loads(text, max_age=MINUTES * 60)
        except BadSignature:  # SignatureExpired too
            return {}
        return found if isinstance(found, dict) else {}

    async def keep(self, response: Response, data: Mapping[str, Any]) -> None:
        response.set_cookie(
            COOKIE, (await self._serializer()).dumps(dict(data)), max_age=MINUTES * 60,
            path=START, secure=self._secure, httponly=True, samesite="lax",
        )  # fmt: skip

    def forget(self, response: Response) -> None:
        response.delete_cookie(
            COOKIE, path=START, secure=self._secure, httponly=True, samesite="lax"
        )


def _holding(request: Request, data: dict[str, Any]) -> Request:
    """``request`` as Authlib sees it: with ``data`` for its session."""
    return Request({**request.scope, "session": data}, request.receive)


# ── the provider's side, through Authlib ─────────────────────────────────────


class ProviderUnavailableError(PoiseError):
    """The provider could not be reached, or its discovery document is not usable."""

    http_status = 502


class _SignIn:
    """What the routes need of one application's provider."""

    def __init__(self, provider: Provider, engine: sa.Engine, secure: bool) -> None:
        self.provider = provider
        self.transactions = _Transactions(engine, secure)
        oauth = OAuth()
        oauth.register(
            name=NAME,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            server_metadata_url=provider.metadata_url,
            client_kwargs={
                "scope": provider.scopes,
                "code_challenge_method": "S256",
                "timeout": TIMEOUT,
            },
        )
        self.client: Any = oauth.create_client(NAME)  # Authlib is not typed

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once), checked to name the
        issuer configured: a :class:`ProviderUnavailableError` if it cannot be had or does not."""
        try:
            found: dict[str, Any] = await self.client.load_server_metadata()
        except (httpx2.HTTPError, ValueError) as exc:
            raise ProviderUnavailableError(f"{self.provider.metadata_url}: {exc}") from exc
        named = str(found.get("issuer", ""))
        wanted = self.provider.issuer
        missing = [key for key in _NEEDED if not found.get(key)]
        if missing or (wanted is not None and named.rstrip("/") != wanted.rstrip("/")):
            self.client.server_metadata.clear()  # ask again next time: it may be mended
            why = f"no {', '.join(missing)}" if missing else f"issuer {named!r}, not {wanted!r}"
            raise ProviderUnavailableError(f"{self.provider.metadata_url} says {why}")
        return found

    async def vouched(self, request: Request, held: dict[str, Any]) -> str:
        """The username the provider's answer (``request``, the callback) vouches for,
        by Authlib's checks of it against the transaction ``held``: an :class:`AuthError`
        saying why not, or :class:`ProviderUnavailableError`."""
        label = self.provider.label
        await self.metadata()
        try:
            token = await self.client.authorize_access_token(_holding(request, held))
            return await self.username(token)
        except (httpx2.HTTPError, ValueError) as exc:  # unreachable, or not JSON
            raise ProviderUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        except OAuthError as exc:
            raise AuthError(_said(label, exc)) from exc
        except (AuthlibBaseError, JoseError) as exc:  # the ID token failed Authlib's checks
            raise AuthError(f"{label}'s answer did not hold: sign in again") from exc

    async def username(self, token: Mapping[str, Any]) -> str:
        """The username the checked ID token names — or, where it leaves the claim to
        the provider's userinfo endpoint, that endpoint names for the same subject."""
        claims = token.get("userinfo")
        if not isinstance(claims, Mapping):
            raise AuthError("the identity provider sent no ID token")
        claim = self.provider.claim
        if claim not in claims and (await self.metadata()).get("userinfo_endpoint"):
            info = await self.client.userinfo(token=token)
            if info.get("sub") != claims.get("sub"):
                raise AuthError("the identity provider's userinfo is of someone else")
            claims = {**info, **claims}
        return username_from(claims, claim)


def _user(engine: sa.Engine, username: str) -> User | None:
    with engine.connect() as connection:
        return repo.user_by_username(connection, username=username)


def _sign_in_of(request: Request) -> _SignIn:
    found: _SignIn = request.app.state.oidc
    return found


router = APIRouter(include_in_schema=False)


@router.get(START, response_class=HTMLResponse)
async def start(request: Request, next: str | None = None) -> Response:
    """Off to the provider, the transaction kept for the way back."""
    oidc = _sign_in_of(request)
    held: dict[str, Any] = {"next": safe_next(next)}
    target = oidc.provider.redirect_uri or str(request.url_for("oidc_callback"))
    try:
        await oidc.metadata()
        response: Response = await oidc.client.authorize_redirect(_holding(request, held), target)
    except ProviderUnavailableError as exc:
        log.warning("identity provider unavailable", extra={"fields": {"why": str(exc)}})
        return _unavailable(request, oidc, held)
    await oidc.transactions.keep(response, held)
    return response


@router.get(CALLBACK, response_class=HTMLResponse, name="oidc_callback")
async def callback(request: Request, engine: EngineDep) -> Response:
    """Back from the provider: its answer checked, the user found, the session begun —
    or the sign-in page and why not."""
    oidc = _sign_in_of(request)
    held = await oidc.transactions.load(request)
    try:
        username = await oidc.vouched(request, held)
    except ProviderUnavailableError as exc:
        log.warning("identity provider unavailable", extra={"fields": {"why": str(exc)}})
        return _unavailable(request, oidc, held)
    except AuthError as exc:
        return _refused(request, oidc, held, str(exc), why=f"{exc.__cause__ or exc}")
    user = await run_in_threadpool(_user, engine, username)
    if user is None or user.disabled:
        why = "unknown" if user is None else "disabled"
        said = f"no poise user {username} may sign in: ask your poise administrator"
        return _refused(request, oidc, held, said, why=f"{why} user {username}")
    sign_in(request, user)
    log.info("signed in through the identity provider", extra={"fields": {"username": username}})
    response = _onward(request, landing(user, held.get("next")))
    oidc.transactions.forget(response)
    return response


def _said(label: str, exc: OAuthError) -> str:
    """What the sign-in page says of an OAuth error: that the sign-in is stale or was
    begun elsewhere, else the provider's own words."""
    if exc.error == "mismatching_state":
        return (
            f"this sign-in with {label} was not begun in this browser, or took longer than"
            f" {MINUTES} minutes: sign in again"
        )
    detail = f": {exc.description}" if exc.description else ""
    return f"{label} did not sign you in ({exc.error}{detail})"


def _refused(
    request: Request, oidc: _SignIn, held: Mapping[str, Any], said: str, *, why: str
) -> Response:
    log.warning("sign-in through the identity provider refused", extra={"fields": {"why": why}})
    response = sign_in_page(request, next_path=held.get("next"), error=said, status_code=401)
    oidc.transactions.forget(response)
    return response


def _unavailable(request: Request, oidc: _SignIn, held: Mapping[str, Any]) -> Response:
    said = f"{oidc.provider.label} could not be reached: try again, or sign in with a password"
    response = sign_in_page(request, next_path=held.get("next"), error=said, status_code=502)
    oidc.transactions.forget(response)
    return response


def _onward(request: Request, target: str) -> Response:
    """On to ``target`` from a page of this site, not by a redirect: the provider began
    this navigation, and a browser sends no ``SameSite=Strict`` cookie — the new
    session's — on any step of it."""
    return templates.TemplateResponse(
        request, "onward.html", {"target": target, "user": None}, status_code=200
    )


def install(app: FastAPI, engine: sa.Engine, settings: Settings) -> None:
    """The provider's button and routes on ``app``, if ``settings`` configure one."""
    provider = provider_of(settings)
    app.state.sign_in_with = None if provider is None else provider.label
    if provider is None:
        return
    app.state.oidc = _SignIn(provider, engine, settings.cookie_secure)
    app.include_router(router)
