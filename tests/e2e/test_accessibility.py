"""Every page, checked for accessibility by axe-core — Deque's engine, bundled with
``axe-playwright-python`` — run inside Chromium on the page as it stands once drawn,
at a desktop's width and at a phone's (390×844): no violation of WCAG 2.0 and 2.1's A
and AA rules. On a phone, no page scrolls sideways (reflow, which axe does not check).
And the keyboard: on the sign-in page and an account's page, Tab reaches every control
in the order the page reads, each with a focus that shows against what is around it,
and signing in and rebalancing an account need no mouse.

The pages run against ``poise serve`` on a small demo firm, with a run, a proposal with
trades — its household's waiting for approval, a warning of the firm's rules standing,
and another account's proposal blocked — a file loaded with a quarantined row, a
backtest kept, and two other households' proposals released and planned into orders,
one filled in two parts, one rejected, so that no page is checked empty.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.e2e.served import add_users, need_chromium, serve
from tests.processes import run_poise

playwright = pytest.importorskip("playwright.sync_api")
axe_playwright = pytest.importorskip("axe_playwright_python.sync_playwright")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORDS = {
    "ana": "adviser password 1",  # H0001's adviser: rebalances its account, approves
    "olu": "operations pass 1",  # runs, files loaded, backtests
    "cora": "compliance pass 1",  # the compliance queue, with its overrides
    "garcia": "client password 12",  # H0002's client
}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
VIEWPORTS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 3},
}  # fmt: skip
PRICES_HELD = "2022-12-28"  # the demo's last close: a run as of it is not held for stale prices


@dataclass(frozen=True, slots=True)
class Firm:
    base: str
    account: str  # H0001's account
    proposal: str  # kept by a run of H0001
    run: str
    quarantined: int  # the id of a file loaded with a row quarantined
    backtest: str
    order: str  # a block order filled and allocated
    states: dict[str, Any]  # each user's signed-in browser state


def _poise_json(*args: str, url: str, folder: Path) -> Any:
    done = run_poise(*args, "--json", database_url=url, cwd=folder)
    assert done.code == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Firm]:
    need_chromium()
    folder = tmp_path_factory.mktemp("a11y")
    url = f"sqlite:///{folder / 'poise.db'}"
    _poise_json("demo", "--households", "6", "--load-only", url=url, folder=folder)
    backtest = folder / "demo-data" / "backtest"  # two years, monthly, two methods: cheap
    _poise_json(
        "backtest", "--prices", str(backtest / "prices.csv.gz"), "--model",
        str(backtest / "model.csv"), "--from", "2021-01-04", "--to", "2022-12-28",
        "--methods", "bands,optimize", "--monthly", url=url, folder=folder,
    )  # fmt: skip
    run = _poise_json(
        "rebalance", "--household", "H0001", "--method", "optimize", "--as-of", PRICES_HELD,
        url=url, folder=folder,
    )  # fmt: skip
    kept = _poise_json("proposals", "list", "--household", "H0001", url=url, folder=folder)
    proposal = kept["proposals"][0]
    assert proposal["trade_count"] > 0
    _findings(url, proposal["household_proposal_id"], "H0002")
    order = _executed(url, ("H0003", "H0004"))
    lots = (folder / "demo-data" / "lots.csv").read_text().splitlines()
    sent = folder / "custodian-lots.csv"
    sent.write_text(
        f"{lots[0]}\n{lots[1]}\n{proposal['account_id']},L99001,AAPX,10,1500,2020-01-02\n"
    )
    loaded = _poise_json("ingest", str(sent), url=url, folder=folder)
    assert loaded[0]["quarantined"] == 1
    for signing in (("audit", "key"), ("audit", "checkpoint")):  # the ledger's head signed
        signed = run_poise(*signing, database_url=url, cwd=folder)
        assert signed.code == 0, signed.stderr
    add_users({
        "ana": (["--role", "adviser", "--assign", "H0001"], PASSWORDS["ana"]),
        "olu": (["--role", "operations"], PASSWORDS["olu"]),
        "garcia": (["--role", "client", "--household", "H0002"], PASSWORDS["garcia"]),
        "cora": (["--role", "compliance"], PASSWORDS["cora"]),
    }, database_url=url, folder=folder)  # fmt: skip
    with sqlite3.connect(folder / "poise.db") as db:  # no poise code: the store as it is
        (file_id,) = db.execute(
            "SELECT max(id) FROM ingest_files WHERE name = ?", (sent.name,)
        ).fetchone()
        (backtest_id,) = db.execute("SELECT min(backtest_id) FROM backtests").fetchone()
    with serve(database_url=url, folder=folder, settings={"POISE_WORKERS": "1"}) as base:
        states = {}
        for name, password in PASSWORDS.items():  # once each: sign-ins are throttled
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{base}/sign-in")
            page.get_by_label("Username").fill(name)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base}/client" if name == "garcia" else f"{base}/")
            states[name] = context.storage_state()
            context.close()
        yield Firm(
            base=base, account=proposal["account_id"], proposal=proposal["proposal_id"],
            run=run["run_id"], quarantined=file_id, backtest=backtest_id, order=order,
            states=states,
        )  # fmt: skip


def _findings(url: str, household_proposal: str, other_household: str) -> None:
    """The firm's rules found a warning on the household's proposal, and a block on one
    of another household's accounts' proposals (made here by its own rebalance)."""
    from poise.comply.findings import Finding, Severity  # noqa: PLC0415 - poise's own store
    from poise.domain.approvals import Policy  # noqa: PLC0415
    from poise.store.engine import make_engine  # noqa: PLC0415
    from poise.workflow.approvals import check, findings_of  # noqa: PLC0415

    folder = Path(url.removeprefix("sqlite:///")).parent
    made = _poise_json("rebalance", "--household", other_household, "--as-of", PRICES_HELD,
                       url=url, folder=folder)  # fmt: skip
    warning = Finding("firm/cash", "minimum_cash", Severity.WARN, 0.012, 0.02,
                      "cash would be 1.2% of the account, below 2%")  # fmt: skip
    block = Finding("firm/restricted", "restricted_list", Severity.BLOCK, "true", "false",
                    "AAPL is on the firm's restricted list")  # fmt: skip
    engine = make_engine(url)
    try:
        check(engine, proposal_id=household_proposal, findings=findings_of([warning]),
              policy=Policy())  # fmt: skip
        with engine.connect() as connection:
            (other,) = connection.exec_driver_sql(
                "SELECT proposal_id FROM household_proposals WHERE run_id = ?", (made["run_id"],)
            ).one()
        check(engine, proposal_id=other, findings=findings_of([block, warning]),
              policy=Policy())  # fmt: skip
    finally:
        engine.dispose()


def _executed(url: str, households: tuple[str, ...]) -> str:
    """The households rebalanced, their proposals released and planned into a batch; its
    first order filled in two parts (and allocated), its second rejected, and a report of
    no order kept as a break. The filled order's ClOrdID."""
    from datetime import UTC, datetime  # noqa: PLC0415
    from decimal import Decimal  # noqa: PLC0415

    from poise.execute.book import Report  # noqa: PLC0415 - poise's own store
    from poise.settings import Settings  # noqa: PLC0415
    from poise.store.engine import make_engine  # noqa: PLC0415
    from poise.workflow.execute import book_report, plan_batch, policy_of  # noqa: PLC0415

    folder = Path(url.removeprefix("sqlite:///")).parent
    for household in households:
        _poise_json("rebalance", "--household", household, "--method", "optimize", "--as-of",
                    PRICES_HELD, url=url, folder=folder)  # fmt: skip
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "UPDATE proposals SET status = 'released' WHERE account_id IN (SELECT account_id"
                f" FROM accounts WHERE household_id IN ({', '.join('?' * len(households))}))",
                households,
            )
        batch = plan_batch(engine, policy=policy_of(Settings()), actor="system")
        assert len(batch.blocks) >= 2, batch
        (filled, rejected), now = batch.cl_ord_ids[:2], datetime.now(UTC)
        block = batch.blocks[0]
        first = (block.quantity // 2) or block.quantity
        cum = Decimal(0)
        for n, shares in enumerate([first, block.quantity - first], start=1):
            if not shares:
                continue
            cum += shares
            left = block.quantity - cum
            report = Report(exec_id=f"A11Y-{n}", cl_ord_id=filled, exec_type="F",
                            ord_status="1" if left else "2", last_qty=shares,
                            last_px=block.reference, cum_qty=cum, leaves_qty=left,
                            order_id="SIM-1")  # fmt: skip
            book_report(engine, route="simulated", report=report, raw="", at=now)
        refused = Report(exec_id="A11Y-3", cl_ord_id=rejected, exec_type="8", ord_status="8",
                         text="unknown symbol")  # fmt: skip
        book_report(engine, route="simulated", report=refused, raw="", at=now)
        stray = Report(exec_id="A11Y-4", cl_ord_id="NOBODY-00001-N", exec_type="F",
                       ord_status="2", last_qty=Decimal(1), last_px=block.reference,
                       cum_qty=Decimal(1))  # fmt: skip
        book_report(engine, route="simulated", report=stray, raw="35=8|11=NOBODY", at=now)
    finally:
        engine.dispose()
    return filled


def _rebalance_now(page: Page, firm: Firm) -> None:
    page.goto(f"{firm.base}/accounts/{firm.account}")
    page.get_by_role("button", name="Rebalance now").click()
    page.wait_for_selector("#scenarios")


def _verify_ledger(page: Page, firm: Firm) -> None:
    page.goto(f"{firm.base}/audit")
    page.get_by_role("button", name="Verify the ledger").click()
    page.wait_for_selector("#verified")


def _open(path: Callable[[Firm], str]) -> Callable[[Page, Firm], None]:
    def go(page: Page, firm: Firm) -> None:
        answer = page.goto(f"{firm.base}{path(firm)}")
        assert answer is not None
        assert answer.status == 200, f"{path(firm)}: {answer.status}"

    return go


# Each page: who looks at it (None: nobody signed in), and how they get there.
PAGES: dict[str, tuple[str | None, Callable[[Page, Firm], None]]] = {
    "sign-in": (None, _open(lambda f: "/sign-in")),
    "firm": ("ana", _open(lambda f: "/")),
    "household": ("ana", _open(lambda f: "/households/H0001")),
    "account": ("ana", _open(lambda f: f"/accounts/{f.account}")),
    "account-rules": ("ana", _open(lambda f: f"/accounts/{f.account}/rules")),
    "rebalance-now": ("ana", _rebalance_now),
    "proposal": ("ana", _open(lambda f: f"/proposals/{f.proposal}")),
    "approvals": ("ana", _open(lambda f: "/approvals")),
    "compliance": ("cora", _open(lambda f: "/compliance")),
    "runs": ("olu", _open(lambda f: "/runs")),
    "run": ("olu", _open(lambda f: f"/runs/{f.run}")),
    "ingest": ("olu", _open(lambda f: "/ingest")),
    "quarantine": ("olu", _open(lambda f: f"/ingest/{f.quarantined}")),
    "backtests": ("olu", _open(lambda f: "/backtests")),
    "backtest": ("olu", _open(lambda f: f"/backtests/{f.backtest}")),
    "audit": ("olu", _open(lambda f: "/audit")),
    "audit-entry": ("olu", _open(lambda f: "/audit/1")),
    "audit-verified": ("olu", _verify_ledger),
    "execution": ("olu", _open(lambda f: "/execution")),
    "execution-order": ("olu", _open(lambda f: f"/execution/orders/{f.order}")),
    "books": ("olu", _open(lambda f: "/books")),
    "performance": ("ana", _open(lambda f: "/households/H0001/performance")),
    "client": ("garcia", _open(lambda f: "/client")),
}


def _drawn(page: Page) -> None:
    """Until every chart on the page has been drawn: axe checks the page people see."""
    page.wait_for_function(
        "[...document.querySelectorAll('.chart')].every(c => c.querySelector('.main-svg'))"
    )


def violations(page: Page) -> list[dict[str, Any]]:
    """What axe-core finds wrong on the whole page, plotly's charts and all, by WCAG 2.0
    and 2.1's A and AA rules."""
    options = {"runOnly": {"type": "tag", "values": WCAG}, "resultTypes": ["violations"]}
    found: list[dict[str, Any]] = (
        axe_playwright.Axe().run(page, None, options).response["violations"]
    )
    return found


def described(found: list[dict[str, Any]]) -> str:
    """Each violation as someone mending it reads it: the rule, how bad, what it asks,
    and where — each element's selector and axe's summary of what fails there."""
    lines = []
    for v in found:
        lines.append(f"{v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"]:
            summary = " ".join((node.get("failureSummary") or "").split())
            lines.append(f"    {' '.join(node['target'])} — {summary}")
    return "\n".join(lines)


@contextmanager
def opened(browser: Browser, firm: Firm, name: str, viewport: str) -> Iterator[Page]:
    """The page ``name``, as its user sees it at ``viewport``, its charts drawn."""
    who, go = PAGES[name]
    state = firm.states[who] if who else None
    context = browser.new_context(**VIEWPORTS[viewport], storage_state=state)
    try:
        page = context.new_page()
        go(page, firm)
        _drawn(page)
        yield page
    finally:
        context.close()


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("name", PAGES)
def test_page_when_checked_by_axe_then_no_wcag_a_or_aa_violation(
    firm: Firm, browser: Browser, name: str, viewport: str
) -> None:
    with opened(browser, firm, name, viewport) as page:
        found = violations(page)
        assert not found, f"{name} at the {viewport}'s width:\n{described(found)}"


@pytest.mark.parametrize("name", PAGES)
def test_page_when_on_a_phone_then_it_does_not_scroll_sideways(
    firm: Firm, browser: Browser, name: str
) -> None:
    """WCAG 1.4.10, reflow, which axe does not check: at 390 pixels the page fits its
    width, a wide table scrolling in its own box."""
    with opened(browser, firm, name, "phone") as page:
        width, screen, past = page.evaluate(SIDEWAYS)
        assert width <= screen, f"{name} is {width} pixels wide on a {screen}-pixel phone: {past}"


# How wide the page is, the screen's width, and what reaches past it (outside a table's
# own scrolling box).
SIDEWAYS = """() => [
  document.documentElement.scrollWidth, window.innerWidth,
  [...document.querySelectorAll('main *')]
    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                 && !e.closest('.table-wrap'))
    .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : ''))]"""


# Every control a keyboard can reach, in the order of the page.
FOCUSABLE = (
    "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), "
    "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])"
)
NAMED = """el => {
  const by = el.getAttribute('aria-labelledby');
  const name = el.getAttribute('aria-label')
    || (by && by.split(' ').map(id => document.getElementById(id).textContent).join(' '))
    || (el.labels && el.labels.length && el.labels[0].textContent)
    || el.textContent || '';
  return el.tagName.toLowerCase() + ' "' + name.replace(/\\s+/g, ' ').trim() + '"';
}"""
CONTROLS = f"""() => [...document.querySelectorAll("{FOCUSABLE}")]
  .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden')
  .map({NAMED})"""
# The control that has the focus, and how its focus shows: the outline's style, width,
# and contrast with what is around it (the nearest ancestor's opaque background), as
# WCAG 1.4.11 asks of a focus indicator: 3:1.
FOCUSED = f"""() => {{
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const rgb = text => (text.match(/[\\d.]+/g) || []).map(Number);
  const opaque = c => c.length === 3 || (c.length === 4 && c[3] > 0);
  const luminance = c => {{
    const [r, g, b] = c.slice(0, 3).map(v => v / 255)
      .map(v => v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }};
  let around = el.parentElement, behind = [255, 255, 255];
  for (; around; around = around.parentElement) {{
    const c = rgb(getComputedStyle(around).backgroundColor);
    if (opaque(c)) {{ behind = c; break; }}
  }}
  const style = getComputedStyle(el);
  const [hi, lo] = [luminance(rgb(style.outlineColor)), luminance(behind)].sort((a, b) => b - a);
  return {{control: ({NAMED})(el), visible: el.matches(':focus-visible'),
           outline: style.outlineStyle, width: parseFloat(style.outlineWidth),
           contrast: (hi + 0.05) / (lo + 0.05)}};
}}"""


def tab_through(page: Page) -> list[str]:
    """Tab from the top of the page to its last control; each must show its focus.
    Returns the controls in the order Tab reached them."""
    controls: list[str] = page.evaluate(CONTROLS)
    reached = []
    for _ in controls:
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        assert focused is not None, f"Tab left the page after {reached}"
        where = focused["control"]
        assert focused["visible"], f"{where} has the focus but not :focus-visible"
        assert focused["outline"] != "none", f"{where} shows no outline when focused"
        assert focused["width"] >= 2, f"{where}: a focus outline of {focused['width']}px"
        assert focused["contrast"] >= 3, f"{where}: focus contrast {focused['contrast']:.2f}:1"
        reached.append(where)
    assert reached == controls  # every control, in the order the page reads
    return reached


def test_sign_in_when_used_by_keyboard_then_every_control_shows_its_focus_in_order(
    firm: Firm, browser: Browser
) -> None:
    with opened(browser, firm, "sign-in", "desktop") as page:
        reached = tab_through(page)
        assert reached == ['a "poise"', 'input "Username"', 'input "Password"', 'button "Sign in"']
        page.reload()
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.type("ana")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORDS["ana"])
        page.keyboard.press("Enter")  # the form is sent from its last field
        page.wait_for_url(f"{firm.base}/")


def test_account_when_used_by_keyboard_then_every_control_shows_its_focus_and_it_rebalances(
    firm: Firm, browser: Browser
) -> None:
    with opened(browser, firm, "account", "desktop") as page:
        reached = tab_through(page)
        button = 'button "Rebalance now"'
        assert button in reached
        assert reached[-3:] == [
            'div "Holdings against the model"', 'div "Tax lots"', 'div "Recent transactions"'
        ]  # fmt: skip
        page.reload()
        _drawn(page)
        for _ in range(reached.index(button) + 1):
            page.keyboard.press("Tab")
        assert page.evaluate(FOCUSED)["control"] == button
        page.keyboard.press("Enter")
        page.wait_for_url(f"{firm.base}/accounts/{firm.account}/rebalance")
        assert page.locator("#scenarios tbody tr").count() >= 4  # every scenario, side by side
