"""The web pages in a real browser: Chromium (Debian's, driven by Playwright) against
``poise serve`` under uvicorn, on a small demo firm.

An adviser signs in, finds a drifted account on the firm page, opens it and its
household; a client sees their own household and no other; signing out ends the
session; a wrong password, a locked-out user and a form without its security token
are refused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.processes import free_port, run_poise, start_poise

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORDS = {
    "ana": "adviser password 1",
    "garcia": "client password 12",
    "olu": "operations pass 1",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("no chromium: ./dev test installs Debian's package")
        pytest.skip("no chromium: ./dev test installs Debian's package")
    folder = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{folder / 'poise.db'}"
    made = run_poise("demo", "--households", "12", "--json", database_url=url, cwd=folder)
    assert made.code == 0, made.stderr
    demo_users = {u["username"]: u for u in json.loads(made.stdout)["users"]}
    users = {
        "ana": ["--role", "adviser", "--assign", "H0001", "--assign", "H0002"],
        "garcia": ["--role", "client", "--household", "H0003"],
        "olu": ["--role", "operations"],
    }
    for name, args in users.items():
        added = run_poise(
            "users", "add", name, *args, "--password-stdin",
            database_url=url, cwd=folder, stdin=PASSWORDS[name] + "\n",
        )  # fmt: skip
        assert added.code == 0, added.stderr
    port = free_port()
    process = start_poise("serve", "--port", str(port), database_url=url, cwd=folder)
    base = f"http://localhost:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/api/v1/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "poise serve did not start"
        time.sleep(0.2)
    yield base, {"url": url, "folder": str(folder), "demo_client": demo_users["client"]["password"]}
    process.terminate()
    process.communicate(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


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
