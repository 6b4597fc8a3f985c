"""A real OpenID Connect provider nobody here wrote, for the tests of signing in
through one: ``oidc-provider-mock`` (Flask and Authlib's server side), in a thread.

It listens on ``127.0.0.1`` while poise is reached at ``localhost``: two sites to a
browser, as a firm's provider and its poise are, so that the ``SameSite`` rules of the
cookies are what they are in real use. Clients register with it (dynamic client
registration) and get their own id and secret, and its sign-in page asks only whose
``sub`` to sign in: the claims of each person are set by :func:`person`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

pytest.importorskip("authlib.deprecate")  # its filter first: "always" warn of Authlib's own
with warnings.catch_warnings():  # the provider imports a module of Authlib's it deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    oidc_provider_mock = pytest.importorskip("oidc_provider_mock")
serving = pytest.importorskip("werkzeug.serving")


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class Provider:
    issuer: str  # http://127.0.0.1:<port>

    def register(self, redirect_uri: str) -> Client:
        """A client of the provider, which sends the browser back to ``redirect_uri``
        only."""
        answer = httpx.post(f"{self.issuer}/oauth2/clients", json={"redirect_uris": [redirect_uri]})
        answer.raise_for_status()
        body = answer.json()
        return Client(body["client_id"], body["client_secret"])

    def person(self, sub: str, **claims: object) -> None:
        """Someone the provider signs in as ``sub``, with ``claims`` in their ID token
        (as far as the scopes asked allow)."""
        httpx.put(f"{self.issuer}/users/{sub}", json=claims).raise_for_status()


@contextmanager
def provider() -> Iterator[Provider]:
    """The provider, listening until the block ends. Nonces are required, as poise
    always sends one."""
    app = oidc_provider_mock.app(require_client_registration=True, require_nonce=True)
    server = serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield Provider(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
