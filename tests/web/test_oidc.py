"""Signing in to the pages through the firm's identity provider (OpenID Connect).

``poise serve`` runs for real, configured with a real provider nobody here wrote
(:mod:`tests.identity`), and an HTTP client walks the flow as a browser does: poise
sends it to the provider, the provider signs someone in and sends it back with a code.
The callback is asked with the cookies a browser would send on that cross-site
navigation — the transaction's (``SameSite=Lax``), never the session's (``Strict``).

The people at the provider and in poise:

    provider sub   its e-mail claim           in poise
    olu            Olu@Firm.Example           olu@firm.example, operations
    gone           gone@firm.example          gone@firm.example, disabled
    stranger       stranger@firm.example      (nobody)
    sly            olu@firm.example, not verified by the provider
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.identity import Provider, provider
from tests.processes import finish, free_port, start_poise, wait_ready

from poise.api.app import create_app
from poise.domain.errors import AuthError, ConfigError
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.web.oidc import (
    COOKIE,
    ProviderUnavailableError,
    _SignIn,
    provider_of,
    username_from,
)

LABEL = "Acme ID"

# The provider's own code (not poise's) still calls an Authlib method Authlib deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")


@dataclass
class Served:
    base: str
    idp: Provider
    log: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("oidc")
    url = f"sqlite:///{folder / 'poise.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        repo.add_user(connection, username="olu@firm.example", role=Role.OPERATIONS)
        gone = repo.add_user(connection, username="gone@firm.example", role=Role.OPERATIONS)
        repo.disable_user(connection, user_id=gone.user_id)
    engine.dispose()
    with provider() as idp:
        port = free_port()
        base = f"http://localhost:{port}"
        client = idp.register(f"{base}/sign-in/oidc/callback")
        idp.person("olu", email="Olu@Firm.Example", email_verified=True, name="Olu")
        idp.person("gone", email="gone@firm.example", email_verified=True)
        idp.person("stranger", email="stranger@firm.example", email_verified=True)
        idp.person("sly", email="olu@firm.example", email_verified=False)
        settings = {
            "POISE_OIDC_ISSUER": idp.issuer,
            "POISE_OIDC_CLIENT_ID": client.client_id,
            "POISE_OIDC_CLIENT_SECRET": client.client_secret,
            "POISE_OIDC_LABEL": LABEL,
            "POISE_COOKIE_SECURE": "false",  # plain HTTP: the client sends no Secure cookie
        }
        process = start_poise(
            "serve", "--port", str(port), database_url=url, cwd=folder, settings=settings
        )
        served = Served(base, idp)
        assert process.stderr is not None
        reader = threading.Thread(target=lambda: served.log.extend(process.stderr or ()))
        reader.start()
        try:
            wait_ready(base, process)
            yield served
        finally:
            process.terminate()
            process.wait(timeout=30)
            reader.join(timeout=10)


def to_provider(http: httpx.Client, served: Served, sub: str, next_path: str = "/") -> str:
    """Sign in with the provider as ``sub``, from poise's button: the callback the
    provider sends the browser back to (not yet followed)."""
    leaving = http.get(f"{served.base}/sign-in/oidc", params={"next": next_path})
    assert leaving.status_code == 302
    assert leaving.headers["location"].startswith(served.idp.issuer)
    assert COOKIE in http.cookies
    asked = dict(parse_qsl(urlsplit(leaving.headers["location"]).query))
    assert asked["code_challenge_method"] == "S256"  # PKCE, and a nonce, of Authlib's
    assert asked["nonce"]
    assert asked["state"]
    back = http.post(leaving.headers["location"], data={"sub": sub})
    assert back.status_code == 302
    callback = back.headers["location"]
    assert callback.startswith(f"{served.base}/sign-in/oidc/callback?")
    return callback


def back_from_provider(http: httpx.Client, callback: str) -> httpx.Response:
    """The provider's redirect, followed as a browser follows it: a navigation begun on
    another site carries no SameSite=Strict cookie — the session's — and this client
    holds none, as the button's route never begins one."""
    assert "poise_session" not in http.cookies
    return http.get(callback)


def onward(answer: httpx.Response) -> str:
    """Where the page after signing in sends the browser on to."""
    found = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', answer.text)
    assert found is not None, answer.text
    return found[1]


def test_sign_in_when_the_provider_vouches_for_a_poise_user_then_the_firm_page(
    served: Served,
) -> None:
    with httpx.Client() as http:
        answer = back_from_provider(http, to_provider(http, served, "olu"))
        assert answer.status_code == 200
        assert onward(answer) == "/"
        assert COOKIE not in http.cookies  # one transaction, one try
        firm = http.get(f"{served.base}/")  # from a page of poise: the session goes along
    assert firm.status_code == 200
    assert "The firm at a glance" in firm.text
    assert "olu@firm.example" in firm.text  # Olu@Firm.Example: usernames have no case
    assert any("signed in through the identity provider" in line for line in served.log)


def test_sign_in_when_a_page_was_asked_for_then_back_to_it_and_never_off_site(
    served: Served,
) -> None:
    with httpx.Client() as http:
        answer = back_from_provider(http, to_provider(http, served, "olu", "/households/H1"))
        assert onward(answer) == "/households/H1"
    with httpx.Client() as http:
        answer = back_from_provider(http, to_provider(http, served, "olu", "//evil.example/"))
        assert onward(answer) == "/"


@pytest.mark.parametrize(
    ("sub", "said", "why"),
    [
        ("stranger", "no poise user stranger@firm.example may sign in", "unknown user"),
        ("gone", "no poise user gone@firm.example may sign in", "disabled user"),
        ("sly", "has not verified the address olu@firm.example", "not verified"),
    ],
)
def test_sign_in_when_the_person_is_not_a_poise_user_who_may_then_refused(
    served: Served, sub: str, said: str, why: str
) -> None:
    with httpx.Client() as http:
        answer = back_from_provider(http, to_provider(http, served, sub))
        assert answer.status_code == 401
        assert said in answer.text
        assert 'role="alert"' in answer.text  # the sign-in page's own error
        assert not _signed_in(http, served)
    assert any(why in line for line in served.log if "refused" in line)


def _signed_in(http: httpx.Client, served: Served) -> bool:
    return http.get(f"{served.base}/", follow_redirects=False).status_code == 200


def test_callback_when_its_state_is_tampered_with_then_refused(served: Served) -> None:
    with httpx.Client() as http:
        callback = to_provider(http, served, "olu")
        parts = urlsplit(callback)
        query = dict(parse_qsl(parts.query))
        query["state"] = query["state"][:-2] + ("AA" if not query["state"].endswith("AA") else "BB")
        answer = back_from_provider(http, parts._replace(query=urlencode(query)).geturl())
        assert answer.status_code == 401
        assert "was not begun in this browser" in answer.text
        assert not _signed_in(http, served)


def test_callback_when_replayed_then_refused(served: Served) -> None:
    with httpx.Client() as http:
        callback = to_provider(http, served, "olu")
        transaction = http.cookies[COOKIE]
        assert back_from_provider(http, callback).status_code == 200
    with httpx.Client() as thief:  # the same URL and the same cookie, once more
        again = thief.get(callback, headers={"Cookie": f"{COOKIE}={transaction}"})
        assert again.status_code == 401
        assert "did not sign you in (invalid_grant" in again.text  # the code is spent
        assert not _signed_in(thief, served)


def test_callback_when_opened_in_another_browser_then_refused(served: Served) -> None:
    """Someone's callback URL sent to someone else (to sign them in as another): it
    does not hold without the transaction of the browser that began it."""
    with httpx.Client() as http:
        callback = to_provider(http, served, "olu")
    with httpx.Client() as other:
        answer = other.get(callback)
        assert answer.status_code == 401
        assert "was not begun in this browser" in answer.text
    with httpx.Client() as forger:
        forged = forger.get(callback, headers={"Cookie": f"{COOKIE}=e30.Z2FyYmFnZQ.c2lnbmF0dXJl"})
        assert forged.status_code == 401


def test_sign_in_when_the_person_says_no_at_the_provider_then_refused_with_its_words(
    served: Served,
) -> None:
    with httpx.Client() as http:
        leaving = http.get(f"{served.base}/sign-in/oidc")
        denied = http.post(leaving.headers["location"], data={"action": "deny"})
        answer = back_from_provider(http, denied.headers["location"])
    assert answer.status_code == 401
    assert f"{LABEL} did not sign you in (access_denied" in answer.text


# ── in process: the settings, the button, and a provider that is not there ──


@pytest.fixture
def app_of(engine: sa.Engine) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**settings: object) -> TestClient:
        app = create_app(Settings(**settings), engine=engine)  # type: ignore[arg-type]
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_oidc_when_not_configured_then_no_button_and_no_route(
    app_of: Callable[..., TestClient],
) -> None:
    client = app_of()
    page = client.get("/sign-in")
    assert page.status_code == 200
    assert "Sign in with" not in page.text
    assert client.get("/sign-in/oidc", follow_redirects=False).status_code == 404
    assert client.get("/sign-in/oidc/callback?code=x&state=y").status_code == 404


def test_oidc_when_configured_then_the_sign_in_page_has_the_providers_button(
    app_of: Callable[..., TestClient],
) -> None:
    client = app_of(
        oidc_issuer="https://login.firm.example", oidc_client_id="poise", oidc_label=LABEL
    )
    page = client.get("/sign-in", params={"next": "/accounts/10000001"})
    assert f'href="/sign-in/oidc?next=/accounts/10000001">Sign in with {LABEL}</a>' in page.text
    assert 'name="password"' in page.text  # passwords still sign in


def test_oidc_when_the_provider_cannot_be_reached_then_the_sign_in_page_says_so(
    app_of: Callable[..., TestClient],
) -> None:
    client = app_of(
        oidc_issuer=f"http://127.0.0.1:{free_port()}", oidc_client_id="poise", oidc_label=LABEL
    )
    answer = client.get("/sign-in/oidc", follow_redirects=False)
    assert answer.status_code == 502
    assert f"{LABEL} could not be reached" in answer.text


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"oidc_issuer": "https://id.example"}, "POISE_OIDC_CLIENT_ID"),
        ({"oidc_issuer": "id.example", "oidc_client_id": "p"}, "is a URL"),
        (
            {"oidc_issuer": "https://id.example", "oidc_client_id": "p", "oidc_scopes": "email"},
            "must hold openid",
        ),
    ],
)
def test_provider_when_the_settings_cannot_work_then_a_config_error(
    settings: dict[str, str], said: str
) -> None:
    with pytest.raises(ConfigError, match=said):
        provider_of(Settings(**settings))  # type: ignore[arg-type]


def test_serve_when_the_oidc_settings_cannot_work_then_one_line_and_exit_code_2(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    store = make_engine(url)
    upgrade(store)
    store.dispose()
    process = start_poise(
        "serve", "--port", str(free_port()), database_url=url, cwd=tmp_path,
        settings={"POISE_OIDC_ISSUER": "https://login.firm.example"},
    )  # fmt: skip
    done = finish(process, timeout=60)
    assert done.code == 2
    assert done.error_lines == ["error: POISE_OIDC_ISSUER is set: set POISE_OIDC_CLIENT_ID too"], (
        done.stderr
    )


def test_provider_when_configured_then_its_discovery_document_and_defaults() -> None:
    assert provider_of(Settings()) is None  # off unless configured
    found = provider_of(Settings(oidc_issuer="https://id.example/realm/", oidc_client_id="p"))
    assert found is not None
    assert found.metadata_url == "https://id.example/realm/.well-known/openid-configuration"
    assert found.issuer == "https://id.example/realm/"
    assert found.scopes == "openid email profile"
    assert found.claim == "email"
    assert found.client_secret is None  # a public client: PKCE alone
    given = provider_of(
        Settings(
            oidc_issuer="https://id.example/.well-known/openid-configuration",
            oidc_client_id="p",
            oidc_client_secret="s3cret",  # type: ignore[arg-type]
        )
    )
    assert given is not None
    assert given.issuer is None  # the document names it
    assert given.client_secret == "s3cret"


@pytest.mark.parametrize(
    ("claims", "claim", "username"),
    [
        (
            {"email": "Ana.Ruiz@Firm.Example", "email_verified": True},
            "email",
            "ana.ruiz@firm.example",
        ),
        ({"email": "ana@firm.example"}, "email", "ana@firm.example"),  # no word on verifying
        ({"preferred_username": " ANA ", "email": "x@y.z"}, "preferred_username", "ana"),
    ],
)
def test_username_from_when_the_claim_names_someone_then_their_username(
    claims: dict[str, object], claim: str, username: str
) -> None:
    assert username_from(claims, claim) == username


@pytest.mark.parametrize(
    ("claims", "claim", "said"),
    [
        ({"sub": "123"}, "email", "did not say who you are"),
        ({"email": "ana@firm.example", "email_verified": False}, "email", "not verified"),
        ({"preferred_username": "ana ruiz"}, "preferred_username", "not a poise username"),
        ({"email": ["ana@firm.example"]}, "email", "did not say who you are"),
    ],
)
def test_username_from_when_the_claim_names_no_one_then_refused(
    claims: dict[str, object], claim: str, said: str
) -> None:
    with pytest.raises(AuthError, match=said):
        username_from(claims, claim)


def test_password_when_a_provider_is_configured_then_it_still_signs_in(
    app_of: Callable[..., TestClient], engine: sa.Engine
) -> None:
    from poise.api import auth, security  # noqa: PLC0415

    auth._attempts = auth._Attempts()
    with engine.begin() as connection:
        repo.add_user(
            connection, username="ops", role=Role.OPERATIONS,
            password_hash=security.hash_password("correct horse battery staple"),
        )  # fmt: skip
    client = app_of(oidc_issuer="https://id.example", oidc_client_id="p", cookie_secure=False)
    page = client.get("/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = client.post(
        "/sign-in",
        data={"username": "ops", "password": "correct horse battery staple", "csrf": csrf[1]},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert client.get("/").status_code == 200


# ── what the real provider never does: a thin ID token, a document of another issuer ──


class _Answers:
    """Stands in for Authlib's client where the provider's answers are the point."""

    def __init__(self, metadata: dict[str, object], userinfo: dict[str, object]) -> None:
        self.server_metadata = dict(metadata)
        self._userinfo = userinfo

    async def load_server_metadata(self) -> dict[str, object]:
        return self.server_metadata

    async def userinfo(self, token: object) -> dict[str, object]:
        return self._userinfo


DOCUMENT = {
    "issuer": "https://id.example",
    "authorization_endpoint": "https://id.example/authorize",
    "token_endpoint": "https://id.example/token",
    "jwks_uri": "https://id.example/keys",
    "userinfo_endpoint": "https://id.example/userinfo",
}


def _sign_in_with(answers: _Answers) -> _SignIn:
    found = provider_of(Settings(oidc_issuer="https://id.example", oidc_client_id="p"))
    assert found is not None
    sign_in = _SignIn(found, sa.create_engine("sqlite://"), secure=True)
    sign_in.client = answers
    return sign_in


def test_username_when_the_id_token_leaves_the_claim_to_userinfo_then_asked_there() -> None:
    """An ID token of the code flow may hold no more than who (``sub``): the claims the
    scopes ask for are then the userinfo endpoint's, which must speak of the same sub."""
    thin = {"userinfo": {"sub": "u-17"}, "access_token": "at"}
    same = _sign_in_with(_Answers(DOCUMENT, {"sub": "u-17", "email": "Ana@Firm.Example"}))
    assert asyncio.run(same.username(thin)) == "ana@firm.example"
    other = _sign_in_with(_Answers(DOCUMENT, {"sub": "u-99", "email": "ana@firm.example"}))
    with pytest.raises(AuthError, match="of someone else"):
        asyncio.run(other.username(thin))


@pytest.mark.parametrize(
    ("document", "said"),
    [
        ({**DOCUMENT, "issuer": "https://elsewhere.example"}, "issuer 'https://elsewhere.example'"),
        ({k: v for k, v in DOCUMENT.items() if k != "jwks_uri"}, "no jwks_uri"),
    ],
)
def test_metadata_when_the_document_will_not_do_then_unavailable_and_asked_again(
    document: dict[str, object], said: str
) -> None:
    answers = _Answers(document, {})
    with pytest.raises(ProviderUnavailableError, match=said):
        asyncio.run(_sign_in_with(answers).metadata())
    assert answers.server_metadata == {}  # forgotten: the next sign-in asks again
