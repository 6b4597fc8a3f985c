"""Pages that move as things happen, in a real browser: operations starts a firm-wide
run from the runs page and watches its progress reach the end; a rebalance request
raised by hand (``poise requests add``, another process) appears on an open firm page
without reloading it — for the adviser of its household, and not for another's."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.e2e.served import add_users, need_chromium, serve
from tests.processes import run_poise

PASSWORDS = {"olu": "operations pass 1", "ana": "adviser password 1", "ben": "adviser password 2"}
WAIT_MS = 60_000  # what a page may take to show what happened


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    need_chromium()
    folder = tmp_path_factory.mktemp("live")
    url = f"sqlite:///{folder / 'poise.db'}"
    made = run_poise(
        "demo", "--households", "6", "--load-only", "--json", database_url=url, cwd=folder
    )
    assert made.code == 0, made.stderr
    add_users({
        "olu": (["--role", "operations"], PASSWORDS["olu"]),
        "ana": (["--role", "adviser", "--assign", "H0001"], PASSWORDS["ana"]),
        "ben": (["--role", "adviser", "--assign", "H0002"], PASSWORDS["ben"]),
    }, database_url=url, folder=folder)  # fmt: skip
    with serve(database_url=url, folder=folder, settings={"POISE_WORKERS": "1"}) as base:
        yield base, url, folder


def signed_in(browser: object, base: str, username: str) -> object:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{base}/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORDS[username])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")
    return page


def test_runs_when_operations_starts_one_then_its_page_follows_it_to_the_end(
    server: tuple[str, str, Path], browser: object
) -> None:
    base, _, _ = server
    page = signed_in(browser, base, "olu")
    page.get_by_role("link", name="Runs").click()  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/runs")  # type: ignore[attr-defined]
    page.get_by_label("Households", exact=True).select_option("all")  # type: ignore[attr-defined]
    page.get_by_label("Method").select_option("bands")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Start the run").click()  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/runs/\d{8}-\d{6}-[0-9a-f]{4}$"))  # type: ignore[attr-defined]
    status = page.get_by_role("status")  # type: ignore[attr-defined]
    status.filter(has_text="finished").wait_for(timeout=WAIT_MS)
    progress = page.locator("#run-progress")  # type: ignore[attr-defined]
    assert progress.get_attribute("max") == progress.get_attribute("value") == "6"
    assert page.get_by_text("What it came to").is_visible()  # type: ignore[attr-defined]
    run_id = page.url.rsplit("/", 1)[-1]  # type: ignore[attr-defined]
    page.get_by_role("link", name="Runs").click()  # type: ignore[attr-defined]
    row = page.locator(f'#runs tr[data-run="{run_id}"]')  # type: ignore[attr-defined]
    assert row.locator('[data-field="status"]').inner_text() == "finished"


def test_runs_page_when_a_run_starts_elsewhere_then_it_appears_and_moves_to_its_end(
    server: tuple[str, str, Path], browser: object
) -> None:
    base, _, _ = server
    page = signed_in(browser, base, "olu")
    page.goto(f"{base}/runs")  # type: ignore[attr-defined]
    page.locator("body[data-live=yes]").wait_for(timeout=WAIT_MS)  # type: ignore[attr-defined]
    token = httpx.post(f"{base}/api/v1/auth/token",
                       data={"username": "olu", "password": PASSWORDS["olu"]}).json()  # fmt: skip
    started = httpx.post(
        f"{base}/api/v1/runs",
        json={"selection": {"all": True}, "method": "optimize"},
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=WAIT_MS / 1000,
    )
    assert started.status_code == 202, started.text
    row = page.locator(f'#runs tr[data-run="{started.json()["run_id"]}"]')  # type: ignore[attr-defined]
    row.locator('[data-field="status"]', has_text="finished").wait_for(timeout=WAIT_MS)
    assert row.locator('[data-field="count"]').inner_text() == "6 of 6"


def test_firm_page_when_a_request_is_raised_then_it_appears_for_its_households_adviser(
    server: tuple[str, str, Path], browser: object
) -> None:
    base, url, folder = server
    ana = signed_in(browser, base, "ana")  # H0001's adviser
    ben = signed_in(browser, base, "ben")  # H0002's
    for page in (ana, ben):
        page.locator("body[data-live=yes]").wait_for(timeout=WAIT_MS)  # type: ignore[attr-defined]
    with sqlite3.connect(folder / "poise.db") as db:  # no poise code: the store as it is
        (account,) = db.execute(
            "SELECT min(account_id) FROM accounts WHERE household_id = 'H0001'"
        ).fetchone()
    raised = run_poise("requests", "add", account, "--note", "client called",
                       database_url=url, cwd=folder)  # fmt: skip
    assert raised.code == 0, raised.stderr
    live = ana.locator("#live-requests li[data-request]")  # type: ignore[attr-defined]
    live.first.wait_for(timeout=WAIT_MS)
    assert account in live.first.inner_text()
    assert "manual" in live.first.inner_text()
    # ben's page has had the time to hear it too: it does not show it
    ben.wait_for_timeout(2_000)  # type: ignore[attr-defined]
    assert ben.locator("#live-requests li[data-request]").count() == 0  # type: ignore[attr-defined]
