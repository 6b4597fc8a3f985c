"""The API's rate limit: each caller — a user, once their credentials hold, else an
address — may make ``POISE_API_RATE`` requests a minute, then is answered 429 with
``Retry-After`` until the oldest of them is a minute old; another caller is not
slowed, and health and readiness are never counted. The window itself runs on a clock
the tests turn, so nothing here waits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from poise.api import auth, security
from poise.api.app import API_PREFIX, create_app
from poise.api.limits import Window
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade

LIMIT = 3  # requests a minute a caller
PASSWORD = "correct horse battery staple"


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    # The limit is counted in the server's process, whatever its store: SQLite will do.
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def tokens(engine: sa.Engine) -> dict[str, str]:
    """A read token for each of two users, and a second one for the first."""
    found = {}
    with engine.begin() as connection:
        for username in ("ana", "ben"):
            user = repo.add_user(
                connection, username=username, role=Role.OPERATIONS,
                password_hash=security.hash_password(PASSWORD),
            )  # fmt: skip
            for name in (username, f"{username} again"):
                token_id, secret, text = security.new_token()
                repo.add_token(
                    connection, user_id=user.user_id, token_id=token_id,
                    secret_hash=security.token_hash(secret), name=name, scopes=["read"],
                )  # fmt: skip
                found[name] = text
    return found


def serve(engine: sa.Engine, rate: int) -> TestClient:
    auth._attempts = auth._Attempts()  # the sign-in throttle: a minute of its own
    return TestClient(
        create_app(Settings(api_rate=rate), engine=engine), raise_server_exceptions=False
    )


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    with serve(engine, LIMIT) as c:
        yield c


def get(client: TestClient, path: str, token: str | None = None) -> Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return client.get(f"{API_PREFIX}{path}", headers=headers)


def test_api_when_a_user_asks_past_the_rate_then_429_with_retry_after_and_others_go_on(
    client: TestClient, tokens: dict[str, str]
) -> None:
    assert [get(client, "/auth/me", tokens["ana"]).status_code for _ in range(LIMIT)] == [
        200
    ] * LIMIT
    refused = get(client, "/households", tokens["ana"])  # any route: the user is counted
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"] == "https://poise.invalid/problems/toomanyrequests"
    assert problem["status"] == 429
    assert f"{LIMIT} a minute" in problem["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # A user is one caller, whichever of their tokens they send ...
    assert get(client, "/auth/me", tokens["ana again"]).status_code == 429
    # ... and no one else's caller.
    assert get(client, "/auth/me", tokens["ben"]).status_code == 200


def test_api_when_no_credentials_hold_then_counted_by_address_and_health_never(
    client: TestClient, tokens: dict[str, str]
) -> None:
    answers = [
        get(client, "/auth/me"),  # no credentials
        get(client, "/auth/me", "poise_pat_not-a-token"),
        client.post(f"{API_PREFIX}/auth/token", data={"username": "ana", "password": "wrong"}),
    ]
    assert [a.status_code for a in answers] == [401] * LIMIT
    assert get(client, "/households").status_code == 429
    assert "retry-after" in get(client, "/households").headers
    signing_in = client.post(f"{API_PREFIX}/auth/token", data={"username": "ana",
                                                              "password": PASSWORD})  # fmt: skip
    assert signing_in.status_code == 429  # the address has had its minute
    for path in ("/health", "/ready", "/openapi.json"):
        assert get(client, path).status_code == 200, path
    # A user is counted as themselves, not as the address they ask from.
    assert get(client, "/auth/me", tokens["ana"]).status_code == 200


def test_api_when_a_minute_has_passed_then_the_caller_is_answered_again(
    client: TestClient, tokens: dict[str, str]
) -> None:
    clock = Clock()
    client.app.state.api_rate = Window(LIMIT, clock=clock)  # type: ignore[attr-defined]
    for _ in range(LIMIT):
        assert get(client, "/auth/me", tokens["ana"]).status_code == 200
        clock.now += 10
    refused = get(client, "/auth/me", tokens["ana"])
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "30"  # the first was 30 s ago
    clock.now += 29
    assert get(client, "/auth/me", tokens["ana"]).status_code == 429
    clock.now += 1
    assert get(client, "/auth/me", tokens["ana"]).status_code == 200


def test_api_when_the_rate_is_zero_then_no_one_is_limited(
    engine: sa.Engine, tokens: dict[str, str]
) -> None:
    with serve(engine, 0) as client:
        statuses = {get(client, "/auth/me", tokens["ana"]).status_code for _ in range(4 * LIMIT)}
    assert statuses == {200}


def test_window_when_full_then_the_wait_is_until_the_oldest_request_leaves_it() -> None:
    clock = Clock()
    window = Window(2, seconds=60, clock=clock)
    assert [window.wait("a"), window.wait("a")] == [0, 0]
    clock.now += 10
    assert window.wait("a") == 50
    assert window.wait("b") == 0  # another key has a window of its own
    clock.now += 49.5
    assert window.wait("a") == 1  # whole seconds, rounded up
    clock.now += 0.5
    assert window.wait("a") == 0  # the first two are a minute old: out of the window
    assert window.wait("a") == 0
    assert window.wait("a") == 60  # these two are in it


def test_window_when_callers_fall_silent_then_they_are_forgotten() -> None:
    clock = Clock()
    window = Window(5, seconds=60, clock=clock)
    for n in range(100):
        window.wait(f"address {n}")
    assert len(window) == 100
    clock.now += 61
    window.wait("someone new")
    assert len(window) == 1
