"""Object-level authorisation, over every route the OpenAPI document lists.

A small firm of two households, H1 and H2. Every route is called three ways for an
object of H1 — as H2's adviser, as H2's client, and with no credentials — and never
answers with H1's data: 404 for a path that names an H1 object (as for one that does
not exist), lists without any H1 object, 401 without credentials. A route whose path
names an object this test has no H1 example for fails it: a new route comes with its
rule and its example. Then the same routes as H1's own people and the firm-wide
roles, who do see H1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.firm_files import write_firm

from poise.api import security
from poise.api.app import API_PREFIX, create_app
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths

OPEN = {("get", f"{API_PREFIX}/health"), ("get", f"{API_PREFIX}/ready"),
        ("get", f"{API_PREFIX}/openapi.json"), ("post", f"{API_PREFIX}/auth/token")}  # fmt: skip
H1_OBJECTS = {"household_id": "H1", "account_id": None}  # the account is read from the firm
PERSONAL = {("get", f"{API_PREFIX}/auth/me")}  # about the caller, not the firm's objects
H1_WORDS = ("H1", "Garcia")  # what would betray an H1 object in an answer


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[sa.Engine, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("firm")
    engine = make_engine(f"sqlite:///{folder / 'poise.db'}")
    upgrade(engine)
    ingest_paths(engine, write_firm(folder), today=datetime.now(UTC).date())
    tokens: dict[str, str] = {}
    people = {
        "adviser_h1": (Role.ADVISER, {"households": ["H1"]}),
        "adviser_h2": (Role.ADVISER, {"households": ["H2"]}),
        "client_h1": (Role.CLIENT, {"household_id": "H1"}),
        "client_h2": (Role.CLIENT, {"household_id": "H2"}),
        "operations": (Role.OPERATIONS, {}),
        "compliance": (Role.COMPLIANCE, {}),
    }
    with engine.begin() as connection:
        for username, (role, kw) in people.items():
            user = repo.add_user(connection, username=username, role=role, **kw)  # type: ignore[arg-type]
            token_id, secret, text = security.new_token()
            repo.add_token(
                connection, user_id=user.user_id, token_id=token_id,
                secret_hash=security.token_hash(secret), name="tests", scopes=["read", "write"],
            )  # fmt: skip
            tokens[username] = text
    yield engine, tokens
    engine.dispose()


@pytest.fixture(scope="module")
def client(firm: tuple[sa.Engine, dict[str, str]]) -> Iterator[TestClient]:
    engine, _ = firm
    with TestClient(create_app(Settings(), engine=engine), raise_server_exceptions=False) as c:
        yield c


def h1_account(engine: sa.Engine) -> str:
    with engine.connect() as connection:
        return repo.accounts(connection, household_id="H1")[0].account_id


def routes(client: TestClient) -> list[tuple[str, str]]:
    document = client.get(f"{API_PREFIX}/openapi.json").json()
    return sorted(
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if (method, path) not in OPEN
    )


def filled(path: str, engine: sa.Engine) -> str:
    examples = {**H1_OBJECTS, "account_id": h1_account(engine)}
    names = re.findall(r"{(\w+)(?::path)?}", path)
    missing = [n for n in names if n not in examples]
    assert not missing, f"{path}: no H1 example for {missing} — add the rule and the example"
    for name in names:
        path = re.sub(rf"{{{name}(?::path)?}}", str(examples[name]), path)
    return path


def call(client: TestClient, method: str, path: str, token: str | None) -> tuple[int, str]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    answer = client.request(method.upper(), path, headers=headers)
    return answer.status_code, answer.text


def test_routes_when_listed_then_every_one_needs_credentials_and_has_a_rule(
    client: TestClient, firm: tuple[sa.Engine, dict[str, str]]
) -> None:
    engine, _ = firm
    found = routes(client)
    assert len(found) >= 5  # the book's reads at least
    for method, path in found:
        status, text = call(client, method, filled(path, engine), None)
        assert status == 401, (method, path, status, text[:200])
        assert not any(word in text for word in H1_WORDS), (method, path)


@pytest.mark.parametrize("who", ["adviser_h2", "client_h2"])
def test_routes_when_called_by_another_households_people_then_no_h1_data(
    client: TestClient, firm: tuple[sa.Engine, dict[str, str]], who: str
) -> None:
    engine, tokens = firm
    for method, path in routes(client):
        url = filled(path, engine)
        status, text = call(client, method, url, tokens[who])
        if "{" in path:  # it names an H1 object: exactly what an unknown one gets
            assert status == 404, (who, method, path, status, text[:200])
            problem = json.loads(text)
            assert set(problem) == {"type", "title", "status", "detail", "instance"}
            assert re.fullmatch(r"no (household|account) \S+", problem["detail"]), problem
        else:
            assert status in (200, 403), (who, method, path, status, text[:200])
            assert not any(word in text for word in H1_WORDS), (who, method, path, text[:300])
            assert h1_account(engine) not in text, (who, method, path)


@pytest.mark.parametrize("who", ["adviser_h1", "client_h1", "operations", "compliance"])
def test_routes_when_called_by_people_who_may_see_h1_then_they_do(
    client: TestClient, firm: tuple[sa.Engine, dict[str, str]], who: str
) -> None:
    engine, tokens = firm
    for method, path in routes(client):
        status, text = call(client, method, filled(path, engine), tokens[who])
        assert status == 200, (who, method, path, status, text[:200])
        if "{" not in path and (method, path) not in PERSONAL:  # a list: H1's objects in it
            assert "H1" in text, (who, method, path)


def test_households_when_an_adviser_lists_them_then_only_their_own(
    client: TestClient, firm: tuple[sa.Engine, dict[str, str]]
) -> None:
    _, tokens = firm
    answer = client.get(
        f"{API_PREFIX}/households", headers={"Authorization": f"Bearer {tokens['adviser_h2']}"}
    ).json()
    assert [h["household_id"] for h in answer["items"]] == ["H2"]
    assert answer["total"] == 1
    every = client.get(
        f"{API_PREFIX}/households", headers={"Authorization": f"Bearer {tokens['operations']}"}
    ).json()
    assert [h["household_id"] for h in every["items"]] == ["H1", "H2"]


def test_read_when_the_etag_is_held_then_304(
    client: TestClient, firm: tuple[sa.Engine, dict[str, str]]
) -> None:
    _, tokens = firm
    auth = {"Authorization": f"Bearer {tokens['operations']}"}
    first = client.get(f"{API_PREFIX}/households/H1", headers=auth)
    again = client.get(
        f"{API_PREFIX}/households/H1", headers={**auth, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""


def test_token_when_it_only_reads_then_a_write_is_forbidden(tmp_path: Path) -> None:
    assert security.permits(frozenset({"read"}), "GET")
    assert not security.permits(frozenset({"read"}), "POST")
