"""The execution blotter's pages, signed in as a browser is (a session, the forms'
tokens), on the firm of ``tests.workflow.execution_firm`` planned into one batch — A1's
sale of 100 S1 crossed 60 against B1's buy, the rest in four block orders — with the S1
sale filled in two parts and allocated, the S2 sale rejected, and a report of an order
nobody sent kept as a break.

The firm-wide roles see the blotter, its link, and an order's page; an adviser and a
client see none of them. The blotter's live part is a fragment htmx fetches again every
few seconds; the kill switch's section is drawn again only when the switch moves.
Operations and admins halt and resume, with a reason, each in the ledger; compliance
sees where the switch stands, not its buttons.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.workflow.execution_firm import MADE, firm

from poise.api import auth, security
from poise.api.app import create_app
from poise.audit.ledger import entries
from poise.domain.users import Role
from poise.execute.book import Report
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.store.repo.execution import mark_sent
from poise.web.execution import REFRESH_SECONDS
from poise.workflow.execute import book_report, plan_batch, policy_of

PASSWORD = "correct horse battery staple"
PEOPLE = {
    "olu": (Role.OPERATIONS, {}),
    "root": (Role.ADMIN, {}),
    "cora": (Role.COMPLIANCE, {}),
    "ana": (Role.ADVISER, {"households": ["H1", "H2"]}),
    "garcia": (Role.CLIENT, {"household_id": "H1"}),
}


def report(cl_ord_id: str, exec_id: str, *figures: str, exec_type: str = "F") -> Report:
    """An execution report: ``figures`` are LastQty, LastPx, CumQty, LeavesQty."""
    last, price, cum, left = (Decimal(f) for f in figures)
    status = {"F": "2" if left == 0 else "1", "8": "8"}[exec_type]
    return Report(exec_id=exec_id, cl_ord_id=cl_ord_id, exec_type=exec_type, ord_status=status,
                  last_qty=last, last_px=price, cum_qty=cum, leaves_qty=left, order_id="B-7",
                  text="unknown symbol" if exec_type == "8" else "")  # fmt: skip


@dataclass(frozen=True)
class Desk:
    engine: sa.Engine
    orders: dict[tuple[str, str], str]  # (security, side) → the block's ClOrdID
    users: dict[str, str]  # username → user id

    def book(self, cl_ord_id: str, exec_id: str, *figures: str, exec_type: str = "F") -> None:
        made = report(cl_ord_id, exec_id, *figures, exec_type=exec_type)
        book_report(self.engine, route="simulated", report=made, raw="", at=datetime.now(UTC))

    def switched(self) -> list[tuple[str, str, str]]:
        with self.engine.connect() as connection:
            return [(e.action, e.actor, e.reason) for e in entries(connection)
                    if e.action in ("execute.halt", "execute.resume")]  # fmt: skip


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    firm(engine)
    batch = plan_batch(engine, policy=policy_of(Settings()), actor="system", at=MADE)
    orders = {(b.security_id, b.side.value): c
              for b, c in zip(batch.blocks, batch.cl_ord_ids, strict=True)}  # fmt: skip
    hashed = security.hash_password(PASSWORD)
    with engine.begin() as connection:
        for n, key in enumerate([("S1", "sell"), ("S2", "sell")], start=1):
            mark_sent(connection, cl_ord_id=orders[key], seq=n, at=MADE)
        users = {
            name: repo.add_user(connection, username=name, role=role, name=name.title(),
                                password_hash=hashed, **kw).user_id
            for name, (role, kw) in PEOPLE.items()
        }  # fmt: skip
    made = Desk(engine, orders, users)
    sold = orders[("S1", "sell")]
    made.book(sold, "E1", "25", "49.50", "25", "15")
    made.book(sold, "E2", "15", "49.70", "40", "0")
    made.book(orders[("S2", "sell")], "E3", "0", "0", "0", "0", exec_type="8")
    made.book("NOBODY-00001-N", "E9", "5", "10", "5", "0")
    yield made
    engine.dispose()


def token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


class Browser:
    """A browser's session, as one person after another signs in to it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def sign_in(self, username: str) -> Browser:
        self.client.cookies.clear()
        page = self.client.get("/sign-in")
        signed = self.client.post(
            "/sign-in",
            data={"username": username, "password": PASSWORD, "csrf": token(page.text)},
            follow_redirects=False,
        )
        assert signed.status_code == 303, signed.text
        return self

    def get(self, path: str) -> str:
        page = self.client.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:300])
        return page.text

    def send(self, path: str, reason: str, *, csrf: str | None = None) -> httpx.Response:
        sent = token(self.get("/execution")) if csrf is None else csrf
        return self.client.post(path, data={"csrf": sent, "reason": reason},
                                follow_redirects=False)  # fmt: skip


@pytest.fixture
def browser(desk: Desk) -> Iterator[Browser]:
    auth._attempts = auth._Attempts()  # sign-ins are throttled by address: a minute of its own
    with TestClient(create_app(Settings(workers=1, cookie_secure=False), engine=desk.engine)) as c:
        yield Browser(c)


def section(page: str, table: str) -> str:
    """The body of the page's table ``table``."""
    return page.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]


# ── who sees it ──────────────────────────────────────────────────────────────


@pytest.mark.parametrize("who", ["olu", "cora"])
def test_blotter_when_a_firm_wide_role_signs_in_then_the_link_and_the_page(
    browser: Browser, who: str
) -> None:
    home = browser.sign_in(who).get("/")
    assert re.search(r'<nav aria-label="Pages">.*<a href="/execution" >Execution</a>', home, re.S)
    page = browser.get("/execution")
    assert '<a href="/execution" aria-current="page">Execution</a>' in page
    assert "<h1>Execution blotter</h1>" in page


@pytest.mark.parametrize("who", ["ana", "garcia"])
def test_blotter_when_an_adviser_or_a_client_signs_in_then_no_link_and_not_found(
    browser: Browser, desk: Desk, who: str
) -> None:
    browser.sign_in(who)
    home = browser.get("/client" if who == "garcia" else "/")
    assert 'href="/execution"' not in home
    order = desk.orders[("S1", "sell")]
    for path in ("/execution", "/execution/live", "/execution/switch",
                 f"/execution/orders/{order}"):  # fmt: skip
        answer = browser.client.get(path)
        assert answer.status_code == 404, path
        assert "49.575000" not in answer.text
        assert "Kill switch" not in answer.text
    for act in ("halt", "resume"):
        sent = browser.client.post(f"/execution/{act}", data={"csrf": token(home), "reason": "x"})
        assert sent.status_code == 404
    assert desk.switched() == []


# ── the blotter ──────────────────────────────────────────────────────────────


def test_blotter_when_opened_then_working_fills_rejects_breaks_crosses_and_routes(
    browser: Browser, desk: Desk
) -> None:
    page = browser.sign_in("cora").get("/execution")
    working = section(page, "working")
    assert desk.orders[("S1", "buy")] in working  # C1's 50 S1, never sent
    assert desk.orders[("S2", "buy")] in working
    assert desk.orders[("S1", "sell")] not in working  # filled
    fills = section(page, "fills")
    shares_at = r'<td>sell</td><td class="num">(\d+)</td><td class="num">([\d.]+)</td>'
    assert re.findall(shares_at, fills) == [("15", "49.70"), ("25", "49.50")]  # the latest first
    rejects = section(page, "rejects")
    assert desk.orders[("S2", "sell")] in rejects
    assert "unknown symbol" in rejects
    assert "unknown order" in section(page, "breaks")
    crosses = section(page, "crosses")
    assert re.search(r"A1</a> sells 60", crosses)
    assert re.search(r"B1</a> buys 60", crosses)
    assert "every custodian no other route takes" in section(page, "routes")
    figures = re.findall(r'<div class="figure[^"]*">(\d+)</div><div class="label">([^<]+)<', page)
    assert {label: int(n) for n, label in figures} == {
        "orders working or waiting to be sent": 2,  # C1's S1 and A2's S2, in the outbox
        "orders and cancels waiting in the outbox": 2,
        "fills today (UTC)": 2,
        "execution reports in the last minute": 4,  # the rate: two fills, a reject, a stray
        "orders rejected today": 1,
        "breaks kept": 1,
    }


def test_blotter_when_polled_then_the_fragment_shows_what_came_since(
    browser: Browser, desk: Desk
) -> None:
    page = browser.sign_in("olu").get("/execution")
    trigger = f'hx-get="/execution/live" hx-trigger="every {REFRESH_SECONDS}s'
    assert trigger in page
    assert "C1-FILL" not in page
    desk.book(desk.orders[("S1", "buy")], "C1-FILL", "50", "50.40", "50", "0")
    fragment = browser.get("/execution/live")
    assert fragment.lstrip().startswith('<div id="blotter"')
    assert trigger in fragment
    assert "<html" not in fragment  # the part alone, for htmx to put in place
    assert "50.40" in section(fragment, "fills")
    assert desk.orders[("S1", "buy")] not in section(fragment, "working")


def test_blotter_when_the_session_has_ended_then_the_poll_sends_the_browser_to_sign_in(
    browser: Browser,
) -> None:
    browser.sign_in("olu").get("/execution")
    browser.client.cookies.clear()
    for path in ("/execution/live", "/execution/switch"):
        answer = browser.client.get(path, follow_redirects=False)
        assert answer.headers["hx-redirect"] == "/sign-in?next=/execution"
        assert answer.text == ""


# ── the kill switch ──────────────────────────────────────────────────────────


def test_switch_when_compliance_looks_then_the_state_and_no_button(browser: Browser) -> None:
    page = browser.sign_in("cora").get("/execution")
    assert "<strong>Trading:</strong>" in page
    assert 'action="/execution/halt"' not in page
    assert "Operations and admins halt and resume trading." in page


def test_switch_when_compliance_posts_a_halt_then_403_and_nothing_written(
    browser: Browser, desk: Desk
) -> None:
    browser.sign_in("cora")
    answer = browser.send("/execution/halt", "I would rather")
    assert answer.status_code == 403
    assert desk.switched() == []


@pytest.mark.parametrize("who", ["olu", "root"])
def test_switch_when_a_trader_halts_and_resumes_then_the_ledger_and_the_page_say_so(
    browser: Browser, desk: Desk, who: str
) -> None:
    page = browser.sign_in(who).get("/execution")
    assert re.search(r'<label for="halt-reason">Why halt</label>', page)
    halted = browser.send("/execution/halt", "a runaway algo")
    assert (halted.status_code, halted.headers["location"]) == (303, "/execution")
    page = browser.get("/execution")
    assert "Halted: nothing new goes to the brokers" in page  # what came of it, once
    assert re.search(rf"<strong>Halted:</strong>.*Pulled by {who.title()} at .*a runaway algo",
                     page)  # fmt: skip
    assert 'action="/execution/halt"' not in page
    assert '<label for="resume-reason">Why resume</label>' in page
    withdrawn = desk.orders[("S1", "buy")]  # never sent: withdrawn, not cancelled at a broker
    assert withdrawn not in section(page, "working")
    resumed = browser.send("/execution/resume", "checked, all clear")
    assert resumed.status_code == 303
    page = browser.get("/execution")
    assert "Resumed: new orders may go out again." in page
    assert "<strong>Trading:</strong>" in page
    assert "Last lifted by" in page
    user = desk.users[who]
    assert desk.switched() == [("execute.halt", user, "a runaway algo"),
                               ("execute.resume", user, "checked, all clear")]  # fmt: skip


def test_switch_when_no_reason_or_no_token_then_nothing_written(
    browser: Browser, desk: Desk
) -> None:
    browser.sign_in("olu")
    assert browser.send("/execution/halt", "   ").status_code == 303
    assert "Not halted: say why, in words." in browser.get("/execution")
    assert browser.send("/execution/halt", "a reason", csrf="forged").status_code == 403
    assert browser.send("/execution/resume", "nothing to lift").status_code == 303
    assert "Not resumed: the kill switch is not pulled." in browser.get("/execution")
    assert desk.switched() == []


def test_switch_when_polled_then_drawn_again_only_once_it_moved(
    browser: Browser, desk: Desk
) -> None:
    page = browser.sign_in("olu").get("/execution")
    assert 'hx-get="/execution/switch?seen=0"' in page
    assert browser.client.get("/execution/switch?seen=0").status_code == 204
    browser.send("/execution/halt", "drill")
    moved = browser.client.get("/execution/switch?seen=0")
    assert moved.status_code == 200
    assert '<section id="switch"' in moved.text
    assert "<strong>Halted:</strong>" in moved.text
    (seq,) = re.findall(r'hx-get="/execution/switch\?seen=(\d+)"', moved.text)
    assert browser.client.get(f"/execution/switch?seen={seq}").status_code == 204


# ── an order ─────────────────────────────────────────────────────────────────


def test_order_when_opened_then_its_block_statement_fills_average_and_allocation(
    browser: Browser, desk: Desk
) -> None:
    order = desk.orders[("S1", "sell")]
    page = browser.sign_in("cora").get(f"/execution/orders/{order}")
    assert f'<h1>Order <span class="id">{order}</span></h1>' in page
    assert '<dd id="average-price">49.575000</dd>' in page
    statement = section(page, "statement")
    assert '<a href="/accounts/A1">A1</a>' in statement
    assert "L1 (40)" in statement
    assert [e for e in ("E1", "E2") if e in section(page, "executions")] == ["E1", "E2"]
    allocations = section(page, "allocations")
    assert re.search(r'<td class="num">40</td><td class="num">49.575000</td>'
                     r'<td class="num">1,983.00</td>', allocations)  # fmt: skip
    assert 'id="fills-chart" class="chart" role="img"' in page
    assert 'Plotly.newPlot("fills-chart"' in page


def test_order_when_nothing_filled_then_no_chart_and_said_so(browser: Browser, desk: Desk) -> None:
    page = browser.sign_in("olu").get(f"/execution/orders/{desk.orders[('S2', 'buy')]}")
    assert '<dd id="average-price">no fill yet</dd>' in page
    assert "fills-chart" not in page
    assert "plotly.min.js" not in page
    assert "Nothing allocated yet" in page


def test_order_when_no_such_order_then_404(browser: Browser) -> None:
    answer = browser.sign_in("olu").client.get("/execution/orders/NOBODY-00001-N")
    assert answer.status_code == 404
    assert "no order NOBODY-00001-N" in answer.text
