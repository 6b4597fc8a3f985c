"""Signing in through the firm's identity provider, in a real browser: Chromium
(Debian's, driven by Playwright) against ``poise serve``, and a real OpenID Connect
provider (:mod:`tests.identity`) on another site — ``127.0.0.1`` to poise's
``localhost`` — so that the session cookie's ``SameSite=Strict`` is kept as it is in
real use: not sent on the way back from the provider.

Someone opens a page, is sent to sign in, presses the provider's button, signs in at
the provider's page and lands on the page they opened, signed in; someone the
provider knows and poise does not is refused on the sign-in page.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.e2e.served import need_chromium
from tests.identity import provider
from tests.processes import free_port, start_poise, wait_ready

from poise.domain.users import Role
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade

LABEL = "Acme ID"
LOOPBACK = ("http://localhost:", "http://127.0.0.1:")

pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    need_chromium()
    folder = tmp_path_factory.mktemp("oidc-web")
    url = f"sqlite:///{folder / 'poise.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        repo.add_user(connection, username="olu@firm.example", role=Role.OPERATIONS, name="Olu")
    engine.dispose()
    with provider() as idp:
        port = free_port()
        base = f"http://localhost:{port}"
        client = idp.register(f"{base}/sign-in/oidc/callback")
        idp.person("olu", email="olu@firm.example", email_verified=True)
        idp.person("stranger", email="stranger@firm.example", email_verified=True)
        settings = {
            "POISE_OIDC_ISSUER": idp.issuer,
            "POISE_OIDC_CLIENT_ID": client.client_id,
            "POISE_OIDC_CLIENT_SECRET": client.client_secret,
            "POISE_OIDC_LABEL": LABEL,
        }
        process = start_poise(
            "serve", "--port", str(port), database_url=url, cwd=folder, settings=settings
        )
        try:
            wait_ready(base, process)
            yield base
        finally:
            process.terminate()
            process.communicate(timeout=30)


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    # The provider's page links a stylesheet on the internet: nothing leaves this machine.
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(LOOPBACK) else route.abort()
        ),
    )
    page = context.new_page()
    yield page
    context.close()


def at_the_provider(page: object, base: str, sub: str) -> None:
    """From poise's sign-in page, through the provider's, as ``sub``."""
    page.get_by_role("link", name=f"Sign in with {LABEL}").click()  # type: ignore[attr-defined]
    page.wait_for_url("http://127.0.0.1:*/**")  # type: ignore[attr-defined]
    page.get_by_placeholder("sub").fill(sub)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Authorize").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/**")  # type: ignore[attr-defined]


def test_sign_in_when_the_provider_vouches_then_lands_where_it_began_signed_in(
    server: str, page: object
) -> None:
    base = server
    page.goto(f"{base}/")  # type: ignore[attr-defined]
    assert "/sign-in" in page.url  # type: ignore[attr-defined]
    at_the_provider(page, base, "olu")
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]
    assert page.get_by_role("heading", name="The firm at a glance").is_visible()  # type: ignore[attr-defined]
    assert "Olu" in page.locator("header .who").inner_text()  # type: ignore[attr-defined]
    page.goto(f"{base}/")  # type: ignore[attr-defined]  # the session holds, page after page
    assert page.url == f"{base}/"  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign out").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/sign-in")  # type: ignore[attr-defined]


def test_sign_in_when_poise_does_not_know_the_person_then_refused_on_the_sign_in_page(
    server: str, page: object
) -> None:
    base = server
    page.goto(f"{base}/sign-in")  # type: ignore[attr-defined]
    at_the_provider(page, base, "stranger")
    alert = page.get_by_role("alert").inner_text()  # type: ignore[attr-defined]
    assert alert == "no poise user stranger@firm.example may sign in: ask your poise administrator"
    page.goto(f"{base}/")  # type: ignore[attr-defined]
    assert "/sign-in" in page.url  # type: ignore[attr-defined]
