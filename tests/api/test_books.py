"""The books through the API, on SQLite and PostgreSQL: the firm of
``tests.workflow.test_custodian`` (a fill allocated and not booked, a split the books do
not know, a cash difference), reconciled by operations; the breaks listed and one
resolved; a household's tax year and performance read by whoever may see it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import add_people
from tests.workflow.test_custodian import DAY, firm

from poise.api.app import API_PREFIX, create_app
from poise.domain.users import Role
from poise.settings import Settings

PEOPLE: dict[str, tuple[Role, dict[str, Any]]] = {
    "olu": (Role.OPERATIONS, {}),
    "pam": (Role.PORTFOLIO_MANAGER, {}),
    "ana": (Role.ADVISER, {"households": ["H1"]}),
    "bob": (Role.ADVISER, {"households": []}),
    "garcia": (Role.CLIENT, {"household_id": "H1"}),
}


@dataclass(frozen=True)
class Desk:
    client: TestClient
    tokens: dict[str, str]

    def call(self, method: str, path: str, who: str = "olu", **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        return self.client.request(method, f"{API_PREFIX}{path}", headers=headers, **kw)


@pytest.fixture
def desk(engine: sa.Engine) -> Iterator[Desk]:
    settings = Settings(_env_file=None, api_rate=0)  # type: ignore[call-arg]
    firm(engine)
    tokens = add_people(engine, PEOPLE)
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as c:
        yield Desk(c, tokens)


def test_reconcile_when_operations_asks_then_fills_are_booked_and_breaks_found(desk: Desk) -> None:
    refused = desk.call("POST", "/reconcile", "ana", json={})
    done = desk.call("POST", "/reconcile", json={})

    assert refused.status_code == 403
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["booked"]["executions"] == 1
    assert body["custodian"]["as_of"] == DAY.isoformat()
    assert sorted((b["account_id"], b["kind"], b["security_id"])
                  for b in body["custodian"]["breaks"]) == [
        ("A1", "quantity", "S2"), ("A2", "cash", None),
    ]  # fmt: skip


@pytest.mark.parametrize(("who", "status"), [("olu", 200), ("pam", 200), ("ana", 403)])
def test_breaks_when_listed_then_for_the_firm_wide_roles(desk: Desk, who: str, status: int) -> None:
    assert desk.call("POST", "/reconcile", json={}).status_code == 200

    answer = desk.call("GET", "/breaks", who)

    assert answer.status_code == status
    if status == 200:
        assert len(answer.json()["items"]) == 2


@pytest.mark.parametrize(("who", "status"), [("ana", 200), ("garcia", 200), ("bob", 404)])
def test_account_breaks_when_read_then_the_households_people_see_them(
    desk: Desk, who: str, status: int
) -> None:
    assert desk.call("POST", "/reconcile", json={}).status_code == 200

    answer = desk.call("GET", "/accounts/A1/breaks", who)

    assert answer.status_code == status
    if status == 200:
        assert [b["kind"] for b in answer.json()["items"]] == ["quantity"]


def test_resolve_when_operations_gives_a_reason_then_the_break_closes_once(desk: Desk) -> None:
    assert desk.call("POST", "/reconcile", json={}).status_code == 200
    path = f"/accounts/A2/breaks/cash:cash:{DAY}/resolve"
    why = {"reason": "the deposit is on its way"}

    refused = desk.call("POST", path, "ana", json=why)
    done = desk.call("POST", path, json=why)
    again = desk.call("POST", path, json=why)

    assert refused.status_code == 403
    assert done.status_code == 200, done.text
    assert (done.json()["reason"], done.json()["closed"] is not None) == (why["reason"], True)
    assert again.status_code == 409
    assert desk.call("GET", "/accounts/A2/breaks").json()["items"] == []


def test_tax_when_read_then_the_households_people_see_its_year(desk: Desk) -> None:
    mine = desk.call("GET", "/households/H1/tax?year=2026", "garcia")
    other = desk.call("GET", "/households/H1/tax?year=2026", "bob")

    assert mine.status_code == 200, mine.text
    assert mine.json()["gains"]["total"] == "0"
    assert other.status_code == 404


@pytest.mark.parametrize(("who", "status"), [("garcia", 200), ("bob", 404)])
def test_statement_when_asked_then_a_pdf_for_the_households_people(
    desk: Desk, who: str, status: int
) -> None:
    answer = desk.call("GET", "/households/H1/statement?quarter=2026Q4", who)

    assert answer.status_code == status
    if status == 200:
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.content.startswith(b"%PDF")


@pytest.mark.parametrize(("who", "status"), [("garcia", 200), ("bob", 404)])
def test_attribution_when_asked_then_the_households_people_and_too_little_history_says_so(
    desk: Desk, who: str, status: int
) -> None:
    answer = desk.call("GET", "/households/H1/attribution", who)

    assert answer.status_code == status
    if status == 200:  # the firm is priced on one day: nothing to measure
        assert (answer.json()["segments"], answer.json()["active"]) == ([], None)
