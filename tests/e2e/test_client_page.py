"""The client's page in a real browser: Chromium (Debian's, driven by Playwright)
against ``poise serve`` on a demo firm of four households, with two sales of the first
household's loaded as a custodian would send them — one of a lot the books hold, one
of a lot they no longer do.

A client signs in and sees their value over the past year charted, their allocation
against their model's target, this year's realised gains with the sale whose basis is
not held said so — and nothing of any other household, whose own client sees none of
theirs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from tests.e2e.served import add_users, need_chromium, serve
from tests.processes import run_poise

PASSWORDS = {"wilson": "client password 31", "davis": "client password 32"}
TAXABLE = {"taxable", "joint", "trust"}


@dataclass(frozen=True)
class Firm:
    base: str
    accounts: dict[str, list[str]]  # household → its account ids
    sold: str  # the account of the first household that sold
    security: str  # what it sold


def _sales(folder: Path) -> tuple[str, str, str]:
    """A transactions file of two sales by H0001 in the demo's last year — of one share
    of a lot its books hold, and of a lot they do not — and the account and security."""
    with (folder / "demo-data" / "accounts.csv").open() as f:
        mine = [r for r in csv.DictReader(f) if r["household_id"] == "H0001"]
    mine.sort(key=lambda r: r["registration"] not in TAXABLE)  # a taxable one first
    account = mine[0]["account_id"]
    with (folder / "demo-data" / "lots.csv").open() as f:
        lot = next(
            r for r in csv.DictReader(f)
            if r["account_id"] == account and Decimal(r["quantity"]) >= 1
        )  # fmt: skip
    text = (
        "account_id,txn_id,kind,trade_date,settle_date,security_id,quantity,amount,lots,description\n"
        f"{account},S900001,sell,2022-11-15,2022-11-17,{lot['security_id']},1,1000.00,"
        f"{lot['lot_id']}:1,Rebalance\n"
        f"{account},S900002,sell,2022-06-01,2022-06-03,{lot['security_id']},2,500.00,"
        "L99999:2,Sold before the books were kept\n"
    )
    path = folder / "sales.csv"
    path.write_text(text)
    return str(path), account, lot["security_id"]


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    need_chromium()
    folder = tmp_path_factory.mktemp("client-page")
    url = f"sqlite:///{folder / 'poise.db'}"
    made = run_poise(
        "demo", "--households", "4", "--load-only", "--json", database_url=url, cwd=folder
    )
    assert made.code == 0, made.stderr
    path, account, security = _sales(folder)
    loaded = run_poise("ingest", path, "--strict", database_url=url, cwd=folder)
    assert loaded.code == 0, loaded.stdout + loaded.stderr
    add_users({name: (["--role", "client", "--household", household], PASSWORDS[name])
               for name, household in (("wilson", "H0001"), ("davis", "H0002"))},
              database_url=url, folder=folder)  # fmt: skip
    with (folder / "demo-data" / "accounts.csv").open() as f:
        accounts: dict[str, list[str]] = {}
        for row in csv.DictReader(f):
            accounts.setdefault(row["household_id"], []).append(row["account_id"])
    with serve(database_url=url, folder=folder) as base:
        yield Firm(base, accounts, account, security)


@pytest.fixture(params=[(1280, 900), (390, 844)], ids=["desktop", "phone"])
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    width, height = request.param
    context = browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: object, base: str, username: str) -> None:
    page.goto(f"{base}/sign-in")  # type: ignore[attr-defined]
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORDS[username])  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/client")  # type: ignore[attr-defined]


def test_client_when_signed_in_then_sees_value_over_time_target_and_realised_gains(
    firm: Firm, page: object
) -> None:
    sign_in(page, firm.base, "wilson")
    chart = page.locator("#value-over-time")  # type: ignore[attr-defined]
    chart.locator(".main-svg").first.wait_for()
    assert chart.get_attribute("role") == "img"
    assert "value day by day" in (chart.get_attribute("aria-label") or "")
    assert page.locator("#value-over-time .scatterlayer .trace").count() == 2  # type: ignore[attr-defined]  # value, money added
    assert "money you add is not a gain" in page.locator("#value-note").inner_text()  # type: ignore[attr-defined]
    assert page.locator("#flows tbody tr").count() > 0  # type: ignore[attr-defined]  # the demo's deposits

    targets = page.locator("#targets tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert targets
    assert any(row.startswith("us equity") for row in targets)
    assert page.locator("#target-chart .main-svg").first.is_visible()  # type: ignore[attr-defined]
    assert page.locator("#target-chart").get_attribute("role") == "img"  # type: ignore[attr-defined]

    realised = page.get_by_role("region", name="Gains realised in 2022")  # type: ignore[attr-defined]
    assert realised.is_visible()
    sales = page.locator("#sales tbody tr")  # type: ignore[attr-defined]
    assert sales.count() == 2
    first, second = sales.nth(0), sales.nth(1)
    assert first.locator("th").inner_text() == "2022-11-15"
    assert first.locator(".security").inner_text() == firm.security
    assert first.locator(".account").inner_text() == firm.sold
    assert first.locator(".term").inner_text() in {"long term", "short term"}
    assert second.locator("th").inner_text() == "2022-06-01"
    assert "basis not held" in second.inner_text()
    totals = page.locator("#realised-totals tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert [row.split("\t")[0] for row in totals] == ["short term", "long term"]
    assert page.locator("#realised-totals").is_visible()  # type: ignore[attr-defined]


def test_client_when_signed_in_then_nothing_of_another_household_is_on_the_page(
    firm: Firm, page: object
) -> None:
    sign_in(page, firm.base, "wilson")
    text = page.content()  # type: ignore[attr-defined]
    assert all(a in text for a in firm.accounts["H0001"])
    others = [a for h, ids in firm.accounts.items() if h != "H0001" for a in ids]
    assert others
    assert not [a for a in others if a in text]


def test_another_client_when_signed_in_then_sees_none_of_the_first_households_sales(
    firm: Firm, page: object
) -> None:
    sign_in(page, firm.base, "davis")
    page.locator("#value-over-time .main-svg").first.wait_for()  # type: ignore[attr-defined]
    text = page.content()  # type: ignore[attr-defined]
    assert not [a for a in firm.accounts["H0001"] if a in text]
    assert "basis not held" not in text
    assert page.locator("#sales").count() == 0  # type: ignore[attr-defined]  # no sales of theirs


def test_client_page_when_on_a_phone_then_one_column(firm: Firm, page: object) -> None:
    sign_in(page, firm.base, "wilson")
    page.locator("#target-chart .main-svg").first.wait_for()  # type: ignore[attr-defined]
    width = page.viewport_size["width"]  # type: ignore[attr-defined]
    targets = page.locator("#targets").bounding_box()  # type: ignore[attr-defined]
    invested = page.locator("#classes").bounding_box()  # type: ignore[attr-defined]
    if width < 700:  # stacked, each as wide as the page allows
        assert invested["y"] > targets["y"] + targets["height"]
        assert targets["width"] > width * 0.8
    else:  # side by side
        assert abs(invested["y"] - targets["y"]) < 200
    scroll = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert scroll <= width  # nothing runs off the side; a wide table scrolls in its own box
