"""Execution through the API, on SQLite and PostgreSQL: the firm of
``tests.workflow.execution_firm`` planned into one batch — A1's sale of 100 S1 crossed
60 against B1's buy, the rest in four block orders (S1 sold on schwab, S1 bought on
fidelity for C1, S2 bought and sold on schwab) — then reports booked as the gateway
books them: the S1 sale filled in two parts and allocated, the S2 sale rejected, and a
report of an order nobody sent kept as a break.

The blotter's reads are the firm-wide roles'; an adviser or a client is answered 403
for a list and 404 for an order. The kill switch is the traders' — operations and
admins — and each pull or lift is the gateway's own, in the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import add_people
from tests.workflow.execution_firm import MADE, firm

from poise.api.app import API_PREFIX, create_app
from poise.audit.ledger import entries
from poise.domain.users import Role
from poise.execute.book import Report
from poise.settings import Settings
from poise.store import repo
from poise.store.repo.execution import mark_sent
from poise.workflow.execute import book_report, plan_batch, policy_of
from poise.workflow.gateway import halted

PEOPLE: dict[str, tuple[Role, dict[str, Any]]] = {
    "olu": (Role.OPERATIONS, {}),
    "root": (Role.ADMIN, {}),
    "cora": (Role.COMPLIANCE, {}),
    "pam": (Role.PORTFOLIO_MANAGER, {}),
    "ana": (Role.ADVISER, {"households": ["H1", "H2"]}),
    "garcia": (Role.CLIENT, {"household_id": "H1"}),
}
READERS = ("olu", "root", "cora", "pam")
TRADERS = ("olu", "root")
ROUTES = """\
[routes.schwab]
host = "127.0.0.1"
port = 9878
target = "SCHWAB"
account = "FIRM-BLOCK"
custodians = ["Schwab"]

[routes.fidelity]
host = "127.0.0.1"
port = 9879
target = "FIDELITY"
"""
LISTS = ("orders", "fills", "crosses", "breaks", "status")


def report(cl_ord_id: str, exec_id: str, *figures: str, exec_type: str = "F") -> Report:
    """An execution report: ``figures`` are LastQty, LastPx, CumQty, LeavesQty."""
    last, price, cum, left = (Decimal(f) for f in figures)
    status = {"F": "2" if left == 0 else "1", "8": "8", "0": "0"}[exec_type]
    return Report(exec_id=exec_id, cl_ord_id=cl_ord_id, exec_type=exec_type, ord_status=status,
                  last_qty=last, last_px=price, cum_qty=cum, leaves_qty=left, order_id="B-1",
                  text="unknown symbol" if exec_type == "8" else "")  # fmt: skip


@dataclass(frozen=True)
class Desk:
    engine: sa.Engine
    client: TestClient
    tokens: dict[str, str]
    users: dict[str, str]  # username → user id
    orders: dict[tuple[str, str], str]  # (security, side) → the block's ClOrdID
    booked_at: datetime

    def call(self, method: str, path: str, who: str = "olu", **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}", **kw.pop("headers", {})}
        return self.client.request(method, f"{API_PREFIX}{path}", headers=headers, **kw)

    def json(self, path: str, who: str = "olu") -> Any:
        answer = self.call("GET", path, who)
        assert answer.status_code == 200, (path, who, answer.status_code, answer.text[:300])
        return answer.json()

    def ledger(self) -> list[tuple[str, str, str]]:
        """The kill switch's entries in the ledger: action, who, why."""
        with self.engine.connect() as connection:
            return [(e.action, e.actor, e.reason) for e in entries(connection)
                    if e.action in ("execute.halt", "execute.resume")]  # fmt: skip


@pytest.fixture
def desk(engine: sa.Engine, tmp_path: Path) -> Iterator[Desk]:
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)
    settings = Settings(_env_file=None, api_rate=0, routes_file=routes)  # type: ignore[call-arg]
    firm(engine)
    batch = plan_batch(engine, policy=policy_of(settings), actor="system", at=MADE)
    orders = {(b.security_id, b.side.value): c
              for b, c in zip(batch.blocks, batch.cl_ord_ids, strict=True)}  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as connection:
        for n, key in enumerate([("S1", "sell"), ("S2", "sell")], start=1):
            mark_sent(connection, cl_ord_id=orders[key], seq=n, at=now - timedelta(minutes=5))
    sold = orders[("S1", "sell")]
    for exec_id, figures in (("E1", ("25", "49.50", "25", "15")),
                             ("E2", ("15", "49.70", "40", "0"))):  # fmt: skip
        book_report(engine, route="schwab", report=report(sold, exec_id, *figures), raw="",
                    at=now)  # fmt: skip
    rejected = report(orders[("S2", "sell")], "E3", "0", "0", "0", "0", exec_type="8")
    book_report(engine, route="schwab", report=rejected, raw="", at=now)
    stray = report("NOBODY-00001-N", "E9", "5", "10", "5", "0")
    book_report(engine, route="schwab", report=stray, raw="8=FIX.4.4|35=8|11=NOBODY", at=now)
    tokens = add_people(engine, PEOPLE)
    with engine.connect() as connection:
        users = {u.username: u.user_id for u in repo.users(connection)}
    with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as c:
        yield Desk(engine, c, tokens, users, orders, now)


# ── who may ──────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("who", list(PEOPLE))
def test_reads_when_asked_by_each_role_then_the_firm_wide_roles_only(desk: Desk, who: str) -> None:
    """The firm-wide roles read the blotter; an adviser — even of every household
    traded — and a client are answered 403 for a list and 404 for an order, as for one
    that does not exist."""
    order = desk.orders[("S1", "sell")]
    for name in LISTS:
        answer = desk.call("GET", f"/execution/{name}", who)
        assert answer.status_code == (200 if who in READERS else 403), (name, answer.text)
    one = desk.call("GET", f"/execution/orders/{order}", who)
    if who in READERS:
        assert one.status_code == 200
    else:
        assert one.status_code == 404
        assert one.json()["detail"] == f"no order {order}"
        assert "A1" not in one.text


def test_order_when_no_such_order_then_404(desk: Desk) -> None:
    answer = desk.call("GET", "/execution/orders/X20221228-none-00001-N")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "no order X20221228-none-00001-N"


@pytest.mark.parametrize("who", ["cora", "pam", "ana", "garcia"])
@pytest.mark.parametrize("act", ["halt", "resume"])
def test_switch_when_not_a_trader_then_403_and_nothing_written(
    desk: Desk, who: str, act: str
) -> None:
    answer = desk.call("POST", f"/execution/{act}", who, json={"reason": "market halted"})
    assert answer.status_code == 403, answer.text
    assert desk.ledger() == []
    with desk.engine.connect() as connection:
        assert not halted(connection)


# ── the orders ───────────────────────────────────────────────────────────────


def test_orders_when_listed_then_paged_the_batch_in_its_order(desk: Desk) -> None:
    every = desk.json("/execution/orders")
    assert (every["total"], every["limit"], every["offset"]) == (4, 100, 0)
    ids = [o["cl_ord_id"] for o in every["items"]]
    assert ids == sorted(desk.orders.values())
    first = desk.json("/execution/orders?limit=3")
    rest = desk.json("/execution/orders?limit=3&offset=3")
    assert [o["cl_ord_id"] for o in first["items"] + rest["items"]] == ids
    assert (len(first["items"]), rest["total"], rest["offset"]) == (3, 4, 3)
    sold = next(o for o in every["items"] if o["cl_ord_id"] == desk.orders[("S1", "sell")])
    assert sold | {"created_at": None, "sent_at": None, "acked_at": None} == {
        "cl_ord_id": desk.orders[("S1", "sell")], "kind": "new", "orig_cl_ord_id": None,
        "block_id": sold["block_id"], "batch_id": sold["batch_id"], "route": "schwab",
        "security_id": "S1", "side": "sell", "ord_type": "limit", "quantity": "40",
        "limit_price": "49.00", "status": "filled", "filled": "40", "broker_order_id": "B-1",
        "created_at": None, "sent_at": None, "acked_at": None, "text": None,
    }  # fmt: skip
    assert sold["created_at"].startswith("2022-12-28T15:00:00")


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ("open=true", [("S1", "buy"), ("S2", "buy")]),  # waiting in the outbox
        ("route=fidelity", [("S1", "buy")]),
        ("route=schwab&open=true", [("S2", "buy")]),
        ("status=rejected", [("S2", "sell")]),
        ("status=filled", [("S1", "sell")]),
        ("status=partial", []),
        ("route=nowhere", []),
    ],
)
def test_orders_when_filtered_then_only_those(
    desk: Desk, query: str, wanted: list[tuple[str, str]]
) -> None:
    found = desk.json(f"/execution/orders?{query}")
    assert [o["cl_ord_id"] for o in found["items"]] == sorted(desk.orders[w] for w in wanted)
    assert found["total"] == len(wanted)


@pytest.mark.parametrize("query", ["status=done", "limit=0", "limit=501", "offset=-1",
                                   "open=maybe"])  # fmt: skip
def test_orders_when_a_filter_cannot_be_read_then_422(desk: Desk, query: str) -> None:
    answer = desk.call("GET", f"/execution/orders?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_order_when_its_block_filled_in_parts_then_its_statement_fills_and_allocation(
    desk: Desk,
) -> None:
    """25 at 49.50 and 15 at 49.70: 1,983.00 for 40 shares, 49.575 a share, all A1's —
    the 40 of its 100 not crossed, from lot L1."""
    order = desk.orders[("S1", "sell")]
    found = desk.json(f"/execution/orders/{order}")
    assert found["order"]["cl_ord_id"] == order
    block = found["block"]
    assert (block["security_id"], block["side"], block["quantity"], block["reference"]) == (
        "S1", "sell", "40", "50"
    )  # fmt: skip
    assert (block["filled"], block["average_price"], block["status"]) == ("40", "49.575000",
                                                                          "filled")  # fmt: skip
    assert block["allocated_at"] is not None
    assert [o["cl_ord_id"] for o in found["orders"]] == [order]
    (line,) = found["statement"]
    assert line == {"number": 1, "account_id": "A1", "proposal_id": line["proposal_id"], "seq": 1,
                    "quantity": "40", "lots": [{"lot_id": "L1", "quantity": "40"}]}  # fmt: skip
    assert line["proposal_id"].startswith("A1/")
    assert [(e["exec_id"], e["last_qty"], e["last_px"], e["cum_qty"]) for e in found["executions"]
            ] == [("E1", "25", "49.50", "25"), ("E2", "15", "49.70", "40")]  # fmt: skip
    (allocation,) = found["allocations"]
    assert (allocation["account_id"], allocation["quantity"], allocation["price"],
            allocation["gross"]) == ("A1", "40", "49.575000", "1983.00")  # fmt: skip
    assert allocation["lots"] == [{"lot_id": "L1", "quantity": "40"}]


def test_order_when_nothing_filled_yet_then_no_average_price(desk: Desk) -> None:
    found = desk.json(f"/execution/orders/{desk.orders[('S1', 'buy')]}")
    assert (found["block"]["filled"], found["block"]["average_price"]) == ("0", None)
    assert found["executions"] == found["allocations"] == []
    assert [line["account_id"] for line in found["statement"]] == ["C1"]


def test_read_when_the_etag_is_held_then_304(desk: Desk) -> None:
    first = desk.call("GET", "/execution/orders")
    again = desk.call("GET", "/execution/orders", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


# ── fills, crosses, breaks, status ───────────────────────────────────────────


def test_fills_when_listed_then_the_latest_first_with_security_and_side(desk: Desk) -> None:
    fills = desk.json("/execution/fills")
    assert fills["total"] == 2
    assert [(f["exec_id"], f["security_id"], f["side"], f["last_qty"]) for f in fills["items"]
            ] == [("E2", "S1", "sell", "15"), ("E1", "S1", "sell", "25")]  # fmt: skip


def test_crosses_when_listed_then_each_with_its_legs(desk: Desk) -> None:
    crosses = desk.json("/execution/crosses")
    assert crosses["total"] == 1
    (cross,) = crosses["items"]
    assert (cross["security_id"], cross["quantity"], cross["price"]) == ("S1", "60", "50")
    assert cross["source"].startswith("last price in the store")
    assert [(leg["account_id"], leg["side"], leg["quantity"]) for leg in cross["legs"]] == [
        ("B1", "buy", "60"), ("A1", "sell", "60")
    ]  # fmt: skip
    assert desk.json("/execution/crosses?offset=1")["items"] == []


def test_breaks_when_a_report_names_no_order_then_it_is_listed(desk: Desk) -> None:
    breaks = desk.json("/execution/breaks")
    (kept,) = breaks["items"]
    assert (kept["route"], kept["kind"]) == ("schwab", "unknown_order")
    assert "E9" in kept["detail"]
    assert kept["raw"] == "8=FIX.4.4|35=8|11=NOBODY"


def test_status_when_asked_then_the_switch_the_counts_and_the_routes_without_their_account(
    desk: Desk,
) -> None:
    status = desk.json("/execution/status")
    assert (status["halted"], status["switch"]) == (False, None)
    # S1 bought on fidelity and S2 bought on schwab: never sent, working in the outbox
    assert (status["working"], status["unsent"]) == (2, 2)
    assert (status["fills_today"], status["rejects_today"], status["breaks"]) == (2, 1, 1)
    assert status["reports_last_minute"] == 4  # two fills, a reject, a stray
    assert status["routes"] == [
        {"name": "fidelity", "host": "127.0.0.1", "port": 9879, "sender": "POISE",
         "target": "FIDELITY", "custodians": [], "takes_the_rest": True, "working": 1},
        {"name": "schwab", "host": "127.0.0.1", "port": 9878, "sender": "POISE",
         "target": "SCHWAB", "custodians": ["Schwab"], "takes_the_rest": False, "working": 1},
    ]  # fmt: skip
    assert "FIRM-BLOCK" not in str(status)


# ── the kill switch ──────────────────────────────────────────────────────────


@pytest.mark.parametrize("who", TRADERS)
def test_halt_when_a_trader_pulls_it_then_the_ledger_says_so_and_cancels_are_queued(
    desk: Desk, who: str
) -> None:
    """The never-sent orders are withdrawn; the one sent and still working would be
    cancelled — here every sent one is done (filled, rejected): no cancel to send."""
    with desk.engine.begin() as connection:  # the S1 buy went out and works at fidelity
        mark_sent(connection, cl_ord_id=desk.orders[("S1", "buy")], seq=3, at=desk.booked_at)
    answer = desk.call("POST", "/execution/halt", who, json={"reason": "a runaway algo"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["location"] == f"{API_PREFIX}/execution/status"
    said = answer.json()
    cancel = desk.orders[("S1", "buy")].removesuffix("N") + "C"
    assert (said["halted"], said["cancels"]) == (True, [cancel])
    entry = said["entry"]
    assert (entry["action"], entry["actor"], entry["reason"]) == (
        "execute.halt", desk.users[who], "a runaway algo"
    )  # fmt: skip
    assert desk.ledger() == [("execute.halt", desk.users[who], "a runaway algo")]
    status = desk.json("/execution/status", "cora")
    assert status["halted"] is True
    assert status["switch"]["seq"] == entry["seq"]
    withdrawn = desk.json("/execution/orders?status=cancelled")["items"]
    assert [(o["cl_ord_id"], o["text"]) for o in withdrawn] == [
        (desk.orders[("S2", "buy")], "withdrawn by the kill switch")
    ]
    (queued,) = desk.json("/execution/orders?status=pending")["items"]
    assert (queued["cl_ord_id"], queued["kind"], queued["orig_cl_ord_id"]) == (
        cancel, "cancel", desk.orders[("S1", "buy")]
    )  # fmt: skip
    detail = desk.json(f"/execution/orders/{desk.orders[('S1', 'buy')]}")
    assert [o["kind"] for o in detail["orders"]] == ["new", "cancel"]


def test_resume_when_halted_then_lifted_and_when_not_then_409(desk: Desk) -> None:
    assert desk.call("POST", "/execution/resume", json={"reason": "early"}).status_code == 409
    assert desk.call("POST", "/execution/halt", json={"reason": "fat finger"}).status_code == 200
    lifted = desk.call("POST", "/execution/resume", "root", json={"reason": "checked, all clear"})
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["halted"] is False
    assert lifted.json()["cancels"] == []
    assert lifted.json()["entry"]["action"] == "execute.resume"
    again = desk.call("POST", "/execution/resume", json={"reason": "twice"})
    assert again.status_code == 409
    assert again.json()["detail"] == "the kill switch is not pulled"
    assert desk.ledger() == [
        ("execute.halt", desk.users["olu"], "fat finger"),
        ("execute.resume", desk.users["root"], "checked, all clear"),
    ]
    assert desk.json("/execution/status")["halted"] is False


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   \n"}, {"reason": "x", "y": 1}])
def test_halt_when_no_reason_then_422_and_nothing_written(desk: Desk, body: dict[str, Any]) -> None:
    answer = desk.call("POST", "/execution/halt", json=body)
    assert answer.status_code == 422, answer.text
    assert desk.ledger() == []


def test_halt_when_sent_again_with_its_idempotency_key_then_answered_as_before_once(
    desk: Desk,
) -> None:
    key = {"Idempotency-Key": "halt-2022-12-28-1"}
    first = desk.call("POST", "/execution/halt", json={"reason": "drill"}, headers=key)
    again = desk.call("POST", "/execution/halt", json={"reason": "drill"}, headers=key)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(desk.ledger()) == 1
