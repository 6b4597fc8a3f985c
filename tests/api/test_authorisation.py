"""Object-level authorisation, over every route the OpenAPI document lists.

A small firm of two households, H1 and H2, with one of everything the API reads
(``tests.api.reads_firm``). Every route is called three ways for an object of H1 — as
H2's adviser, as H2's client, and with no credentials — and never answers with H1's
data: 404 for a path that names an H1 object (as for one that does not exist), lists
without any H1 object, 401 without credentials. A route whose path names an object
this test has no H1 example for fails it: a new route comes with its rule and its
example. Then the same routes as H1's own people and the firm-wide roles, who do see
H1 — except where a role rule keeps a kind of object from a role: a run, a file loaded,
the audit ledger and the execution blotter are the firm-wide roles' alone, a backtest
not a client's (403 for the list, 404 for one); the kill switch is the traders'.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import add_people, build

from poise.api.app import API_PREFIX, create_app
from poise.api.routes.books import BOOKKEEPERS
from poise.api.routes.execution import TRADERS
from poise.domain.approvals import MAY, Act
from poise.domain.users import FIRM_WIDE, LOADERS, REBALANCERS, RUNNERS, Role
from poise.settings import Settings
from poise.workflow.approvals import QUEUE_ROLES

OPEN = {("get", f"{API_PREFIX}/health"), ("get", f"{API_PREFIX}/ready"),
        ("get", f"{API_PREFIX}/openapi.json"), ("post", f"{API_PREFIX}/auth/token")}  # fmt: skip
PERSONAL = {  # about the caller, not the firm's objects
    ("get", f"{API_PREFIX}/auth/me"),
    ("get", f"{API_PREFIX}/events"),  # at once: what they see; then what happens in it
}
STREAMS = {f"{API_PREFIX}/events": "?seconds=0"}  # asked to end at once
H1_WORDS = ("H1", "Garcia")  # what would betray an H1 object in an answer
H1_ACCOUNTS = ("10000001", "10000002")
PEOPLE: dict[str, tuple[Role, dict[str, Any]]] = {
    "adviser_h1": (Role.ADVISER, {"households": ["H1"]}),
    "adviser_h2": (Role.ADVISER, {"households": ["H2"]}),
    "client_h1": (Role.CLIENT, {"household_id": "H1"}),
    "client_h2": (Role.CLIENT, {"household_id": "H2"}),
    "operations": (Role.OPERATIONS, {}),
    "compliance": (Role.COMPLIANCE, {}),
}
# Objects of no household: a security and a model (market facts and the firm's models,
# every role's to read), a run, a backtest, a file loaded, an entry of the audit ledger and
# a broker order (kept from some roles by ROLES).
NO_HOUSEHOLD = {"security_id", "model_id", "run_id", "backtest_id", "file_id", "seq",
                "cl_ord_id"}  # fmt: skip
STAFF = frozenset(Role) - {Role.CLIENT}
ROLES = {  # reads a role rule keeps from the other roles: 403 for a list, 404 for one
    f"{API_PREFIX}/runs": FIRM_WIDE,
    f"{API_PREFIX}/runs/{{run_id}}": FIRM_WIDE,
    f"{API_PREFIX}/backtests": STAFF,
    f"{API_PREFIX}/backtests/{{backtest_id}}": STAFF,
    f"{API_PREFIX}/ingest/files": FIRM_WIDE,
    f"{API_PREFIX}/ingest/files/{{file_id}}": FIRM_WIDE,
    **{
        f"{API_PREFIX}/audit/{name}": FIRM_WIDE
        for name in ("entries", "entries/{seq}", "checkpoints", "verify")
    },
    **{
        f"{API_PREFIX}/execution/{name}": FIRM_WIDE
        for name in ("orders", "orders/{cl_ord_id}", "fills", "crosses", "breaks", "status")
    },
    f"{API_PREFIX}/breaks": FIRM_WIDE,  # the firm's breaks name every household's accounts
    f"{API_PREFIX}/approvals/inbox": MAY[Act.APPROVE],  # those who approve
    f"{API_PREFIX}/compliance/queue": QUEUE_ROLES,  # those who clear findings
}
PROPOSALS = (f"{API_PREFIX}/proposals/{{proposal_id}}",
             f"{API_PREFIX}/household-proposals/{{household_proposal_id}}")  # fmt: skip
ACTS = (Act.APPROVE, Act.REJECT, Act.RELEASE, Act.ACKNOWLEDGE, Act.OVERRIDE)
WRITES = {  # what a role may do: the others are answered 403 (404 for another's object)
    f"{API_PREFIX}/accounts/{{account_id}}/rebalance": REBALANCERS,
    f"{API_PREFIX}/households/{{household_id}}/rebalance": REBALANCERS,
    f"{API_PREFIX}/accounts/{{account_id}}/requests": REBALANCERS,
    f"{API_PREFIX}/runs": RUNNERS,
    f"{API_PREFIX}/ingest": LOADERS,
    f"{API_PREFIX}/approvals/bulk": MAY[Act.APPROVE],
    f"{API_PREFIX}/execution/halt": TRADERS,
    f"{API_PREFIX}/execution/resume": TRADERS,
    f"{API_PREFIX}/reconcile": BOOKKEEPERS,
    f"{API_PREFIX}/accounts/{{account_id}}/breaks/{{break_id}}/resolve": BOOKKEEPERS,
    **{f"{p}/{a.value}": MAY[a] for p in PROPOSALS for a in ACTS},  # the approval machine's
}
FIRM_LISTS = (
    {  # lists of objects of no household: H1 need not be in them
        f"{API_PREFIX}/{name}"
        for name in ("securities", "models", "prices", "runs", "backtests", "ingest/files")
    }
    | {f"{API_PREFIX}/audit/{name}" for name in ("entries", "checkpoints", "verify")}
    | {
        f"{API_PREFIX}/execution/{name}"
        for name in ("orders", "fills", "crosses", "breaks", "status")
    }
    | {f"{API_PREFIX}/breaks"}
)
LABELS = (
    "household proposal|household|account|proposal|request|security|model|run|backtest|file"
    "|audit entry|order|break"
)


@dataclass(frozen=True)
class Firm:
    engine: sa.Engine
    examples: dict[str, str]  # path parameter → the id of an H1 object (or a firm's)
    tokens: dict[str, str]  # person → their token


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    engine, examples = build(tmp_path_factory.mktemp("firm"))
    yield Firm(engine, examples, add_people(engine, PEOPLE))
    engine.dispose()


@pytest.fixture(scope="module")
def client(firm: Firm) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), engine=firm.engine),
                    raise_server_exceptions=False) as c:  # fmt: skip
        yield c


def routes(client: TestClient) -> list[tuple[str, str]]:
    document = client.get(f"{API_PREFIX}/openapi.json").json()
    return sorted(
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if (method, path) not in OPEN
    )


def names(path: str) -> list[str]:
    return re.findall(r"{(\w+)(?::path)?}", path)


def filled(path: str, firm: Firm) -> str:
    missing = [n for n in names(path) if n not in firm.examples]
    assert not missing, f"{path}: no H1 example for {missing} — add the rule and the example"
    for name in names(path):
        path = re.sub(rf"{{{name}(?::path)?}}", firm.examples[name], path)
    return path


def allowed(who: str, method: str, path: str) -> bool:
    """Whether ``who``'s role may read the kind of object ``path`` reads at all — or,
    for any other method, do what the route does."""
    rules = ROLES if method == "get" else WRITES
    if method != "get":
        assert path in WRITES, f"{method} {path}: which roles may do it? — add it to WRITES"
    return PEOPLE[who][0] in rules.get(path, frozenset(Role))


def done(method: str) -> int:
    """What a route answers a caller who may call it: a read, 200; anything else, sent
    here with no body, 422 — past every rule of who may."""
    return 200 if method == "get" else 422


def call(client: TestClient, method: str, path: str, token: str | None) -> tuple[int, str]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    answer = client.request(method.upper(), path + STREAMS.get(path, ""), headers=headers)
    return answer.status_code, answer.text


def assert_not_found(text: str, context: object) -> None:
    problem = json.loads(text)
    assert set(problem) == {"type", "title", "status", "detail", "instance"}, context
    assert re.fullmatch(rf"no ({LABELS}) \S+", problem["detail"]), (context, problem)


def test_routes_when_listed_then_every_one_needs_credentials_and_has_a_rule(
    client: TestClient, firm: Firm
) -> None:
    found = routes(client)
    assert len(found) >= 20  # the book's reads, and the reads of what the commands show
    for method, path in found:
        status, text = call(client, method, filled(path, firm), None)
        assert status == 401, (method, path, status, text[:200])
        assert not any(word in text for word in H1_WORDS), (method, path)


@pytest.mark.parametrize("who", ["adviser_h2", "client_h2"])
def test_routes_when_called_by_another_households_people_then_no_h1_data(
    client: TestClient, firm: Firm, who: str
) -> None:
    for method, path in routes(client):
        status, text = call(client, method, filled(path, firm), firm.tokens[who])
        context = (who, method, path, status, text[:300])
        if any(n not in NO_HOUSEHOLD for n in names(path)):  # it names an H1 object
            assert status == 404, context
            assert_not_found(text, context)
        elif not allowed(who, method, path):  # a role rule: 404 for one, as for an unknown one
            assert status == (404 if names(path) and method == "get" else 403), context
            if names(path):
                assert_not_found(text, context)
        else:  # a list, or an object of no household
            assert status == done(method), context
        assert not any(word in text for word in H1_WORDS) or status == 404, context
        assert not any(account in text for account in H1_ACCOUNTS) or status == 404, context


@pytest.mark.parametrize("who", ["adviser_h1", "client_h1", "operations", "compliance"])
def test_routes_when_called_by_people_who_may_see_h1_then_they_do(
    client: TestClient, firm: Firm, who: str
) -> None:
    for method, path in routes(client):
        status, text = call(client, method, filled(path, firm), firm.tokens[who])
        context = (who, method, path, status, text[:200])
        if not allowed(who, method, path):
            assert status == (404 if names(path) and method == "get" else 403), context
            continue
        assert status == done(method), context
        lists = {("get", p) for p in FIRM_LISTS}
        if method == "get" and not names(path) and (method, path) not in PERSONAL | lists:
            h1 = ("H1", *H1_ACCOUNTS)  # a list of a household's objects: H1's in it
            assert any(word in text for word in h1), context


def test_households_when_an_adviser_lists_them_then_only_their_own(
    client: TestClient, firm: Firm
) -> None:
    answer = client.get(
        f"{API_PREFIX}/households", headers={"Authorization": f"Bearer {firm.tokens['adviser_h2']}"}
    ).json()
    assert [h["household_id"] for h in answer["items"]] == ["H2"]
    assert answer["total"] == 1
    every = client.get(
        f"{API_PREFIX}/households", headers={"Authorization": f"Bearer {firm.tokens['operations']}"}
    ).json()
    assert [h["household_id"] for h in every["items"]] == ["H1", "H2"]


def test_read_when_the_etag_is_held_then_304(client: TestClient, firm: Firm) -> None:
    auth = {"Authorization": f"Bearer {firm.tokens['operations']}"}
    first = client.get(f"{API_PREFIX}/households/H1", headers=auth)
    again = client.get(
        f"{API_PREFIX}/households/H1", headers={**auth, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
