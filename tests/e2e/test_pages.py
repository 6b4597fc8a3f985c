"""The web pages in a real browser: Chromium (Debian's, driven by Playwright) against
``poise serve`` under uvicorn, on a small demo firm.

An adviser signs in, finds a drifted account on the firm page, opens it and its
household; a client sees their own household and no other; signing out ends the
session; a wrong password, a locked-out user and a form without its security token
are refused. Operations loads a custodian's file through the ingest page and finds its
quarantined rows in the history; a backtest the demo's data was run through is shown
with its chart — to the firm's people, not to a client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.served import add_users, need_chromium, serve
from tests.processes import run_poise

PASSWORDS = {
    "ana": "adviser password 1",
    "garcia": "client password 12",
    "olu": "operations pass 1",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    need_chromium()
    folder = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{folder / 'poise.db'}"
    made = run_poise(
        "demo", "--households", "12", "--load-only", "--json", database_url=url, cwd=folder
    )
    assert made.code == 0, made.stderr
    demo_users = {u["username"]: u for u in json.loads(made.stdout)["users"]}
    backtest = folder / "demo-data" / "backtest"  # two years, monthly, two methods: cheap
    kept = run_poise(
        "backtest", "--prices", str(backtest / "prices.csv.gz"), "--model",
        str(backtest / "model.csv"), "--from", "2021-01-04", "--to", "2022-12-28",
        "--methods", "bands,optimize", "--monthly", "--json",
        database_url=url, cwd=folder,
    )  # fmt: skip
    assert kept.code == 0, kept.stderr
    add_users({
        "ana": (["--role", "adviser", "--assign", "H0001", "--assign", "H0002"],
                PASSWORDS["ana"]),
        "garcia": (["--role", "client", "--household", "H0003"], PASSWORDS["garcia"]),
        "olu": (["--role", "operations"], PASSWORDS["olu"]),
    }, database_url=url, folder=folder)  # fmt: skip
    with serve(database_url=url, folder=folder) as base:
        yield base, {"url": url, "folder": str(folder),
                     "demo_client": demo_users["client"]["password"]}  # fmt: skip


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: object, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/sign-in")  # type: ignore[attr-defined]
    page.get_by_label("Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]


def test_adviser_when_signed_in_then_finds_a_drifted_account_and_opens_it(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    page.goto(f"{base}/")  # type: ignore[attr-defined]
    assert "/sign-in" in page.url  # type: ignore[attr-defined]  # a page needs signing in
    sign_in(page, base, "ana", PASSWORDS["ana"])
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]
    assert page.get_by_role("heading", name="The firm at a glance").is_visible()  # type: ignore[attr-defined]
    assert page.locator("#drift-histogram .main-svg").first.is_visible()  # type: ignore[attr-defined]
    households = {h.inner_text() for h in page.locator("#most-drifted td:nth-child(2) a").all()}  # type: ignore[attr-defined]
    assert households <= {"H0001", "H0002"}  # an adviser's firm is their households
    first = page.locator("#most-drifted td:first-child a").first  # type: ignore[attr-defined]
    account = first.inner_text()
    first.click()
    page.wait_for_url(f"{base}/accounts/{account}")  # type: ignore[attr-defined]
    assert page.get_by_role("heading", name=f"Account {account}").is_visible()  # type: ignore[attr-defined]
    assert page.locator("#holdings tbody tr").count() > 0  # type: ignore[attr-defined]
    assert page.locator("#lots tbody tr").count() > 0  # type: ignore[attr-defined]
    page.get_by_role("link", name=page.locator("main p a").first.inner_text()).click()  # type: ignore[attr-defined]
    assert page.locator("#accounts tbody tr").count() > 0  # type: ignore[attr-defined]


def test_adviser_when_opening_another_households_account_then_not_found(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    sign_in(page, base, "ana", PASSWORDS["ana"])
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]
    answer = page.goto(f"{base}/households/H0003")  # type: ignore[attr-defined]
    assert answer.status == 404
    assert page.get_by_role("heading").first.inner_text() == "Not Found"  # type: ignore[attr-defined]
    assert page.locator("#accounts").count() == 0  # type: ignore[attr-defined]  # none of its data


def test_client_when_signed_in_then_sees_their_household_only(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    sign_in(page, base, "garcia", PASSWORDS["garcia"])
    page.wait_for_url(f"{base}/client")  # type: ignore[attr-defined]
    assert page.locator("#accounts tbody tr").count() > 0  # type: ignore[attr-defined]
    assert page.locator("#allocation .main-svg").first.is_visible()  # type: ignore[attr-defined]
    assert page.goto(f"{base}/").url.endswith("/client")  # type: ignore[attr-defined]
    assert page.goto(f"{base}/households/H0001").status == 404  # type: ignore[attr-defined]
    assert page.goto(f"{base}/households/H0003").status == 200  # type: ignore[attr-defined]


def test_sign_out_when_pressed_then_the_pages_need_signing_in_again(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    sign_in(page, base, "olu", PASSWORDS["olu"])
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign out").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/sign-in")  # type: ignore[attr-defined]
    page.goto(f"{base}/")  # type: ignore[attr-defined]
    assert "/sign-in" in page.url  # type: ignore[attr-defined]


def test_sign_in_when_the_password_is_wrong_then_refused_with_a_message(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    sign_in(page, base, "olu", "not the password")
    alert = page.get_by_role("alert")  # type: ignore[attr-defined]
    assert alert.inner_text() == "wrong username or password"
    assert "/sign-in" in page.url  # type: ignore[attr-defined]


def test_sign_in_when_locked_out_then_refused_even_with_the_right_password(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, meta = server
    added = run_poise(
        "users", "add", "locked", "--role", "operations", "--password-stdin",
        database_url=meta["url"], cwd=Path(meta["folder"]), stdin="the right password\n",
    )  # fmt: skip
    assert added.code == 0, added.stderr
    for _ in range(5):
        sign_in(page, base, "locked", "a wrong password")
    sign_in(page, base, "locked", "the right password")
    assert "locked out" in page.get_by_role("alert").inner_text()  # type: ignore[attr-defined]


def test_form_when_its_security_token_is_missing_then_403(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    page.goto(f"{base}/sign-in")  # type: ignore[attr-defined]
    page.evaluate("document.querySelector('input[name=csrf]').remove()")  # type: ignore[attr-defined]
    page.get_by_label("Username").fill("olu")  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORDS["olu"])  # type: ignore[attr-defined]
    with page.expect_response(
        lambda r: r.url.endswith("/sign-in") and r.request.method == "POST"
    ) as info:  # type: ignore[attr-defined]
        page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    assert info.value.status == 403
    assert "security token" in page.inner_text("main")  # type: ignore[attr-defined]


def test_demo_when_built_then_its_printed_users_sign_in(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, meta = server
    sign_in(page, base, "client", meta["demo_client"])  # as `poise demo` printed it
    page.wait_for_url(f"{base}/client")  # type: ignore[attr-defined]
    assert page.goto(f"{base}/households/H0001").status == 200  # type: ignore[attr-defined]
    assert page.goto(f"{base}/households/H0002").status == 404  # type: ignore[attr-defined]


def test_adviser_when_rebalancing_an_account_then_sees_the_scenarios_and_the_proposal(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    sign_in(page, base, "ana", PASSWORDS["ana"])
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]
    page.locator("#most-drifted td:first-child a").first.click()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Rebalance now").click()  # type: ignore[attr-defined]
    page.wait_for_selector("#scenarios")  # type: ignore[attr-defined]
    names = [c.inner_text().split("\n")[0] for c in page.locator("#scenarios td:first-child").all()]  # type: ignore[attr-defined]
    assert names[0].startswith("full")
    assert "(kept)" in names[0]
    assert len(names) >= 4  # every preset, side by side
    assert page.locator("#tradeoff .main-svg").first.is_visible()  # type: ignore[attr-defined]
    assert page.locator("#trades tbody tr").count() > 0  # type: ignore[attr-defined]
    proposal_id = page.locator("#proposal-id").inner_text().split(" · ")[0]  # type: ignore[attr-defined]
    answer = page.goto(f"{base}/proposals/{proposal_id}")  # type: ignore[attr-defined]
    assert answer.status == 200  # the kept proposal, on its own page
    assert page.locator("#trades tbody tr").count() > 0  # type: ignore[attr-defined]


def test_client_when_posting_a_rebalance_then_refused(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    sign_in(page, base, "garcia", PASSWORDS["garcia"])
    page.wait_for_url(f"{base}/client")  # type: ignore[attr-defined]
    assert page.get_by_role("button", name="Rebalance now").count() == 0  # type: ignore[attr-defined]


def test_operations_when_loading_a_file_through_the_form_then_finds_its_quarantined_rows(
    server: tuple[str, dict[str, str]], page: object, tmp_path: Path
) -> None:
    base, meta = server
    demo_lots = (Path(meta["folder"]) / "demo-data" / "lots.csv").read_text().splitlines()
    account = demo_lots[1].split(",")[0]
    sent = tmp_path / "custodian-lots.csv"
    sent.write_text(
        f"{demo_lots[0]}\n{demo_lots[1]}\n{account},L99001,AAPX,10,1500.00,2020-01-02\n"
    )
    sign_in(page, base, "olu", PASSWORDS["olu"])
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]
    page.get_by_role("navigation").get_by_role("link", name="Ingest").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/ingest")  # type: ignore[attr-defined]
    page.get_by_label("Files, CSV or Parquet").set_input_files(str(sent))  # type: ignore[attr-defined]
    page.get_by_role("button", name="Load files").click()  # type: ignore[attr-defined]
    page.wait_for_selector("#reports")  # type: ignore[attr-defined]
    report = page.locator("#reports tbody tr").first.inner_text()  # type: ignore[attr-defined]
    assert sent.name in report
    assert "line 3: security_id: unknown security 'AAPX'" in report
    newest = page.locator("#loads tbody tr").first  # type: ignore[attr-defined]
    assert sent.name in newest.inner_text()
    newest.get_by_role("link").click()
    page.wait_for_selector("#quarantine")  # type: ignore[attr-defined]
    assert page.get_by_role("heading", level=1).inner_text().startswith(sent.name)  # type: ignore[attr-defined]
    rows = page.locator("#quarantine tbody tr").all_inner_texts()  # type: ignore[attr-defined]
    assert rows == [
        f"3\tsecurity_id: unknown security 'AAPX'\t{account},L99001,AAPX,10,1500.00,2020-01-02"
    ]


def test_operations_when_opening_a_backtest_then_sees_each_methods_figures_and_the_chart(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    sign_in(page, base, "olu", PASSWORDS["olu"])
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]
    page.get_by_role("navigation").get_by_role("link", name="Backtests").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/backtests")  # type: ignore[attr-defined]
    page.locator("#backtests tbody a").first.click()  # type: ignore[attr-defined]
    page.wait_for_selector("#wealth .main-svg")  # type: ignore[attr-defined]
    assert page.get_by_role("heading", level=1).inner_text().startswith("Backtest of EQUAL")  # type: ignore[attr-defined]
    methods = [r.split("\t")[0] for r in page.locator("#methods tbody tr").all_inner_texts()]  # type: ignore[attr-defined]
    assert methods == ["bands", "optimize"]
    assert page.locator("#wealth .scatterlayer .trace").count() == 2  # type: ignore[attr-defined]  # a line a method
    assert page.locator("#tax-by-year .main-svg").first.is_visible()  # type: ignore[attr-defined]
    assert page.locator("#years tbody tr").count() == 2  # type: ignore[attr-defined]  # 2021, 2022


def test_adviser_when_looking_for_ingest_then_not_found_but_backtests_are_theirs_to_read(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    sign_in(page, base, "ana", PASSWORDS["ana"])
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]
    nav = page.get_by_role("navigation")  # type: ignore[attr-defined]
    assert nav.get_by_role("link", name="Ingest").count() == 0
    assert page.goto(f"{base}/ingest").status == 404  # type: ignore[attr-defined]
    assert page.goto(f"{base}/ingest/1").status == 404  # type: ignore[attr-defined]
    assert page.goto(f"{base}/backtests").status == 200  # type: ignore[attr-defined]


def test_client_when_opening_backtests_or_ingest_then_not_found(
    server: tuple[str, dict[str, str]], page: object
) -> None:
    base, _ = server
    sign_in(page, base, "garcia", PASSWORDS["garcia"])
    page.wait_for_url(f"{base}/client")  # type: ignore[attr-defined]
    assert page.get_by_role("navigation").count() == 0  # type: ignore[attr-defined]
    for path in ("/backtests", "/ingest"):
        assert page.goto(f"{base}{path}").status == 404  # type: ignore[attr-defined]
