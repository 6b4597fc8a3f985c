"""Rebalancing through the API: an account (a method, or scenarios side by side), a
household, and a firm-wide run in the background — each kept as its command keeps it,
each POST answered once per idempotency key."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import AS_OF, add_people, build
from tests.bus.helpers import NATS_URL, require_nats

from poise.api.app import API_PREFIX, create_app
from poise.domain.approvals import Act, Policy
from poise.domain.errors import ForbiddenError
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.workflow.approvals import act, check
from poise.workflow.fanout import Inline
from poise.workflow.run import Selection, rebalance_run

PEOPLE = {
    "adviser_h1": (Role.ADVISER, {"households": ["H1"]}),
    "client_h1": (Role.CLIENT, {"household_id": "H1"}),
    "compliance": (Role.COMPLIANCE, {}),
    "operations": (Role.OPERATIONS, {}),
}
DAY = AS_OF.date().isoformat()


@dataclass(frozen=True)
class Firm:
    engine: sa.Engine
    tokens: dict[str, str]


@pytest.fixture
def firm(tmp_path: Path) -> Iterator[Firm]:
    engine, _ = build(tmp_path)
    yield Firm(engine, add_people(engine, PEOPLE))
    engine.dispose()


@pytest.fixture
def client(firm: Firm) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(workers=1), engine=firm.engine)) as c:
        yield c


def auth(firm: Firm, who: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {firm.tokens[who]}", **headers}


def proposals_of(engine: sa.Engine, account_id: str) -> int:
    with engine.connect() as connection:
        p = t.proposals
        query = sa.select(sa.func.count()).where(p.c.account_id == account_id)
        return int(connection.execute(query).scalar_one())


def test_account_when_rebalanced_then_the_proposal_is_kept_and_found_where_it_says(
    client: TestClient, firm: Firm
) -> None:
    answer = client.post(
        f"{API_PREFIX}/accounts/10000001/rebalance",
        json={"method": "optimize", "tax_weight": 2, "as_of": DAY},
        headers=auth(firm, "adviser_h1"),
    )
    assert answer.status_code == 201, answer.text
    document = answer.json()
    (only,) = document["scenarios"]
    assert only["method"] == "optimize"
    assert only["settings"]["tax"] == 2
    assert only["proposal"]["proposal_id"] == document["proposal_id"]
    assert only["proposal"]["status"] == "pending"
    location = answer.headers["location"]
    assert location.startswith(f"{API_PREFIX}/proposals/10000001/")
    kept = client.get(location, headers=auth(firm, "adviser_h1"))
    assert kept.status_code == 200
    assert kept.json() == only["proposal"]


def test_account_when_every_scenario_is_asked_then_they_come_side_by_side_the_first_kept(
    client: TestClient, firm: Firm
) -> None:
    answer = client.post(
        f"{API_PREFIX}/accounts/10000001/rebalance",
        json={"scenarios": ["all"], "as_of": DAY},
        headers=auth(firm, "operations"),
    )
    assert answer.status_code == 201, answer.text
    document = answer.json()
    assert [s["name"] for s in document["scenarios"]] == [
        "full", "no-gains", "harvest", "cash", "bands"
    ]  # fmt: skip
    assert document["kept"] == "full"
    first, *others = document["scenarios"]
    assert first["proposal"]["proposal_id"] == document["proposal_id"]
    assert all(s["proposal"]["proposal_id"] is None for s in others)  # shown, not kept
    assert first["figures"]["trades"] == len(first["proposal"]["trades"])


def test_account_when_sent_twice_with_one_key_then_answered_once(
    client: TestClient, firm: Firm
) -> None:
    before = proposals_of(firm.engine, "10000002")
    url = f"{API_PREFIX}/accounts/10000002/rebalance"
    body = {"method": "bands", "as_of": DAY}
    headers = auth(firm, "adviser_h1", **{"Idempotency-Key": "rebalance-10000002-once"})
    first = client.post(url, json=body, headers=headers)
    again = client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert proposals_of(firm.engine, "10000002") == before + 1
    other = client.post(url, json={**body, "method": "cash"}, headers=headers)
    assert other.status_code == 422
    assert "different request" in other.json()["detail"]
    fresh = client.post(url, json=body, headers=auth(firm, "adviser_h1"))  # no key: acted on
    assert fresh.status_code == 201
    assert proposals_of(firm.engine, "10000002") == before + 2


def test_account_when_a_keyed_request_fails_then_the_key_may_be_used_again(
    client: TestClient, firm: Firm
) -> None:
    url = f"{API_PREFIX}/accounts/10000001/rebalance"
    headers = auth(firm, "adviser_h1", **{"Idempotency-Key": "k1"})
    failed = client.post(url, json={"method": "bands", "bands": "nope", "as_of": DAY},
                         headers=headers)  # fmt: skip
    assert failed.status_code == 422, failed.text
    corrected = client.post(url, json={"method": "bands", "as_of": DAY}, headers=headers)
    assert corrected.status_code == 201, corrected.text


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"method": "bands", "scenarios": ["full"]}, "method or scenarios, not both"),
        ({"method": "bands", "risk_weight": 2}, "risk_weight: only the optimize method"),
        ({"scenarios": ["nope"]}, "scenarios"),
        ({"method": "optimize", "tax_budget": "-1"}, "tax_budget"),
        ({"method": "bands", "surprise": 1}, "surprise"),
    ],
)
def test_account_when_asked_what_cannot_be_then_422_says_why(
    client: TestClient, firm: Firm, body: dict[str, object], complaint: str
) -> None:
    before = proposals_of(firm.engine, "10000001")
    answer = client.post(f"{API_PREFIX}/accounts/10000001/rebalance", json=body,
                         headers=auth(firm, "adviser_h1"))  # fmt: skip
    assert answer.status_code == 422
    assert complaint in answer.text
    assert proposals_of(firm.engine, "10000001") == before


@pytest.mark.parametrize("who", ["client_h1", "compliance"])
def test_account_when_the_role_does_not_propose_trades_then_403(
    client: TestClient, firm: Firm, who: str
) -> None:
    answer = client.post(f"{API_PREFIX}/accounts/10000001/rebalance", json={"method": "bands"},
                         headers=auth(firm, who))  # fmt: skip
    assert answer.status_code == 403
    assert "only these roles may do this" in answer.json()["detail"]


def test_household_when_rebalanced_then_its_proposal_holds_each_accounts(
    client: TestClient, firm: Firm
) -> None:
    answer = client.post(
        f"{API_PREFIX}/households/H1/rebalance",
        json={"method": "optimize", "location_weight": 0.5, "as_of": DAY},
        headers=auth(firm, "adviser_h1"),
    )
    assert answer.status_code == 201, answer.text
    document = answer.json()
    assert document["household_id"] == "H1"
    assert document["method"] == "optimize"
    assert sorted(a["account_id"] for a in document["accounts"]) == ["10000001", "10000002"]
    kept = client.get(answer.headers["location"], headers=auth(firm, "adviser_h1"))
    assert kept.status_code == 200
    assert kept.json() == document


def wait_for(client: TestClient, location: str, headers: dict[str, str]) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = client.get(location, headers=headers).json()
        if run["status"] != "running":
            return dict(run)
        time.sleep(0.1)
    raise AssertionError(f"the run did not end: {run}")


def test_run_when_started_then_it_goes_on_in_the_background_and_ends_finished(
    client: TestClient, firm: Firm
) -> None:
    headers = auth(firm, "operations")
    answer = client.post(
        f"{API_PREFIX}/runs",
        json={"selection": {"all": True}, "method": "bands", "as_of": DAY},
        headers=headers,
    )
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["households"] == 2
    assert started["options"]["method"] == "bands"
    assert answer.headers["location"] == f"{API_PREFIX}/runs/{started['run_id']}"
    run = wait_for(client, answer.headers["location"], headers)
    assert run["status"] == "finished"
    assert (run["done"], run["failed"]) == (2, 0)
    assert run["summary"]["households"] == 2  # type: ignore[index]


def test_run_when_an_adviser_starts_one_then_403(client: TestClient, firm: Firm) -> None:
    answer = client.post(f"{API_PREFIX}/runs", json={"selection": {"all": True}},
                         headers=auth(firm, "adviser_h1"))  # fmt: skip
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"selection": {}},
        {"selection": {"all": True, "model_id": "CORE"}},
        {"resume": "x", "selection": {"all": True}},
        {"resume": "x", "method": "optimize"},
    ],
)
def test_run_when_the_selection_cannot_be_read_then_422(
    client: TestClient, firm: Firm, body: dict[str, object]
) -> None:
    answer = client.post(f"{API_PREFIX}/runs", json=body, headers=auth(firm, "operations"))
    assert answer.status_code == 422, answer.text


def test_run_when_resuming_one_that_does_not_exist_then_404(client: TestClient, firm: Firm) -> None:
    answer = client.post(f"{API_PREFIX}/runs", json={"resume": "20990101-000000-beef"},
                         headers=auth(firm, "operations"))  # fmt: skip
    assert answer.status_code == 404
    assert "20990101-000000-beef" in answer.json()["detail"]


def test_run_when_told_to_stop_then_it_keeps_what_it_has_and_a_resume_finishes_it(
    firm: Firm,
) -> None:
    stop = threading.Event()
    stop.set()  # as a server stopping would, before the first household is back
    seen: list[str] = []
    report = rebalance_run(firm.engine, as_of=AS_OF, selection=Selection(all=True),
                           fanout=Inline(), started=seen.append, stop=stop)  # fmt: skip
    assert seen == [report.run_id]
    with firm.engine.connect() as connection:
        run = repo.rebalance_run(connection, run_id=report.run_id)
    assert run.status == "interrupted"
    assert (run.households, run.done) == (2, 1)  # the one back was kept
    again = rebalance_run(firm.engine, as_of=AS_OF, resume=report.run_id, fanout=Inline())
    assert (again.resumed, again.done) == (1, 1)
    with firm.engine.connect() as connection:
        assert repo.rebalance_run(connection, run_id=report.run_id).status == "finished"


def test_request_when_asked_then_stored_once_a_day_and_found_where_it_says(
    client: TestClient, firm: Firm
) -> None:
    url = f"{API_PREFIX}/accounts/10000002/requests"
    first = client.post(url, json={"note": "client called"}, headers=auth(firm, "adviser_h1"))
    assert first.status_code == 201, first.text
    asked = first.json()
    assert asked["account_id"] == "10000002"
    assert asked["reasons"] == ["manual"]
    assert asked["status"] == "open"
    again = client.post(url, json={"note": "again"}, headers=auth(firm, "adviser_h1"))
    assert again.status_code == 200
    assert again.json()["request_id"] == asked["request_id"]
    found = client.get(first.headers["location"], headers=auth(firm, "adviser_h1"))
    assert found.json() == asked
    refused = client.post(url, json={}, headers=auth(firm, "client_h1"))
    assert refused.status_code == 403


def test_request_when_the_bus_crosses_processes_then_a_worker_hears_it(firm: Firm) -> None:
    from poise.bus.registry import open_bus  # noqa: PLC0415

    require_nats()
    nats_url = NATS_URL
    heard: list[str] = []

    async def listen_while_asking() -> None:
        bus = await open_bus("nats", url=nats_url)
        try:

            async def hear(event: object) -> None:
                heard.append(event.event_id)  # type: ignore[attr-defined]

            listener = await bus.listen("poise.requests.>", handler=hear)
            settings = Settings(workers=1, bus="nats", nats_url=nats_url)
            with TestClient(create_app(settings, engine=firm.engine)) as c:
                answer = await asyncio.to_thread(
                    c.post, f"{API_PREFIX}/accounts/10000001/requests", json={},
                    headers=auth(firm, "adviser_h1"),
                )  # fmt: skip
            assert answer.status_code == 201, answer.text
            for _ in range(100):
                if heard:
                    break
                await asyncio.sleep(0.05)
            await listener.stop()
            assert heard == [answer.json()["request_id"]]
        finally:
            await bus.close()

    asyncio.run(listen_while_asking())


def test_account_when_the_body_is_too_large_then_413_before_it_is_read(
    client: TestClient, firm: Firm
) -> None:
    huge = '{"method": "bands", "note": "' + "x" * (2 * 1024 * 1024) + '"}'
    url = f"{API_PREFIX}/accounts/10000001/rebalance"
    as_json = auth(firm, "adviser_h1", **{"Content-Type": "application/json"})
    answer = client.post(url, content=huge, headers=as_json)
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("/toolarge")

    def chunks() -> Iterator[bytes]:  # no length said: refused as it passes the bound
        yield b'{"method": "bands", "note": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    chunked = client.post(url, content=chunks(), headers=as_json)
    assert chunked.status_code == 413
    assert chunked.json()["type"].endswith("/toolarge")


def test_rebalance_when_asked_by_a_user_then_they_prepared_the_proposals_and_cannot_approve_them(
    client: TestClient, firm: Firm
) -> None:
    headers = auth(firm, "adviser_h1")
    account = client.post(f"{API_PREFIX}/accounts/10000001/rebalance",
                          json={"method": "bands", "as_of": DAY}, headers=headers)  # fmt: skip
    household = client.post(f"{API_PREFIX}/households/H1/rebalance",
                            json={"method": "optimize", "as_of": DAY}, headers=headers)  # fmt: skip
    assert (account.status_code, household.status_code) == (201, 201), household.text
    with firm.engine.connect() as connection:
        adviser = repo.user_named(connection, username="adviser_h1")
        prepared = {
            row.proposal_id: row.prepared_by
            for table in (t.proposals, t.household_proposals)
            for row in connection.execute(sa.select(table.c.proposal_id, table.c.prepared_by))
        }
    household_id = household.json()["household_proposal_id"]
    assert prepared[account.json()["proposal_id"]] == adviser.user_id
    assert prepared[household_id] == adviser.user_id
    assert {prepared[a["proposal_id"]] for a in household.json()["accounts"]} == {adviser.user_id}
    check(firm.engine, proposal_id=household_id, findings=(), policy=Policy())
    with pytest.raises(ForbiddenError, match="four eyes"):
        act(firm.engine, proposal_id=household_id, what=Act.APPROVE, user=adviser,
            policy=Policy(expire_after=timedelta(days=10_000)))  # fmt: skip
