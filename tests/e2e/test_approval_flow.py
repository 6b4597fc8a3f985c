"""Four eyes in a real browser: Chromium (Debian's, driven by Playwright) against ``poise
serve`` on a small demo firm.

Ana, H0001's adviser, rebalances one of its accounts on its page and so prepares the
proposal: its approval panel tells her she may not approve it, and why. The firm's rules
find a block on it (the compliance shell's check, as it runs when a proposal is made).
Cora, compliance, finds it in the compliance queue and overrides the block with a
reason; it is still not Ana's to approve (four eyes). Pam, a portfolio manager, finds it
in her approval inbox and approves it on its page. The audit ledger holds each step —
the check, the override and the approval — with who did it and why: on the ledger's
page, and as ``poise audit show`` reads it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from tests.e2e.served import add_users, need_chromium, serve
from tests.processes import run_poise

from poise.comply.findings import Finding, Severity
from poise.domain.approvals import Policy
from poise.store.engine import make_engine
from poise.workflow.approvals import check, findings_of

pytest.importorskip("playwright.sync_api")

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

PASSWORDS = {
    "ana": "adviser password 1",  # H0001's adviser: prepares the proposal
    "pam": "manager password 1",  # a portfolio manager: approves it
    "cora": "compliance pass 1",  # compliance: overrides its block
}
BLOCK = Finding(
    rule_id="firm/restricted", kind="restricted_list", severity=Severity.BLOCK,
    measured="true", limit="false", explanation="a security it buys is on the restricted list",
)  # fmt: skip
OVERRIDE = "research list out of date"
ACTS = ("proposal.check", "proposal.override", "proposal.approve")  # the people's, and the check


@dataclass(frozen=True, slots=True)
class Firm:
    base: str
    url: str
    folder: Path
    account: str  # one of H0001's accounts


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    need_chromium()
    folder = tmp_path_factory.mktemp("approvals")
    url = f"sqlite:///{folder / 'poise.db'}"
    made = run_poise(
        "demo", "--households", "4", "--load-only", "--json", database_url=url, cwd=folder
    )
    assert made.code == 0, made.stderr
    add_users({
        "ana": (["--role", "adviser", "--assign", "H0001"], PASSWORDS["ana"]),
        "pam": (["--role", "portfolio_manager"], PASSWORDS["pam"]),
        "cora": (["--role", "compliance"], PASSWORDS["cora"]),
    }, database_url=url, folder=folder)  # fmt: skip
    with sqlite3.connect(folder / "poise.db") as db:  # the store as it is
        (account,) = db.execute(
            "SELECT min(account_id) FROM accounts WHERE household_id = 'H0001'"
        ).fetchone()
    with serve(database_url=url, folder=folder, settings={"POISE_WORKERS": "1"}) as base:
        yield Firm(base, url, folder, account)


def signed_in(browser: Browser, firm: Firm, username: str) -> Page:
    """A new browser context, ``username`` signed in to it."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{firm.base}/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORDS[username])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{firm.base}/")
    return page


def words(page: Page, selector: str) -> str:
    return " ".join(page.locator(selector).inner_text().split())


def ledger(firm: Firm, proposal_id: str) -> list[tuple[str, str, str]]:
    """The approval entries about the proposal, as ``poise audit show`` reads them: the
    action, who (their username), and why."""
    shown = run_poise("audit", "show", "--subject", proposal_id, "--json",
                      database_url=firm.url, cwd=firm.folder)  # fmt: skip
    assert shown.code == 0, shown.stderr
    listed = run_poise("users", "list", "--json", database_url=firm.url, cwd=firm.folder)
    assert listed.code == 0, listed.stderr
    users: Any = json.loads(listed.stdout)
    names = {u["user_id"]: u["username"] for u in users}
    return [
        (e["action"], names.get(e["actor"], e["actor"]), e["reason"])
        for e in json.loads(shown.stdout)
        if e["action"] in ACTS
    ]


def test_proposal_when_prepared_overridden_and_approved_then_four_eyes_and_every_step_kept(
    firm: Firm, browser: Browser
) -> None:
    ana = signed_in(browser, firm, "ana")
    ana.goto(f"{firm.base}/accounts/{firm.account}")
    ana.get_by_role("button", name="Rebalance now").click()
    ana.wait_for_selector("#approval")
    proposal = ana.locator("#proposal-id").inner_text().split(" · ")[0]
    assert "Prepared by ana (you: another person approves it — four eyes)" in words(
        ana, "#approval"
    )
    assert ana.get_by_role("button", name="Approve", exact=True).count() == 0

    engine = make_engine(firm.url)  # the firm's rules find a block on it
    try:
        check(engine, proposal_id=proposal, findings=findings_of([BLOCK]), policy=Policy())
    finally:
        engine.dispose()
    ana.goto(f"{firm.base}/proposals/{proposal}")
    panel = words(ana, "#approval")
    assert "Status blocked" in panel
    assert f"F1 block firm/restricted {BLOCK.explanation}" in words(ana, "#findings")
    assert "not cleared yet (compliance overrides a block)" in panel
    assert ana.get_by_role("button", name="Approve", exact=True).count() == 0

    cora = signed_in(browser, firm, "cora")
    cora.get_by_role("link", name="Compliance").click()
    cora.wait_for_url(f"{firm.base}/compliance")
    held = cora.locator(f'section[data-proposal="{proposal}"]')
    assert BLOCK.explanation in held.inner_text()
    held.get_by_label("Why override F1").fill(OVERRIDE)
    held.get_by_role("button", name=f"Override F1 of {proposal}").click()
    cora.wait_for_selector("#flashes")
    assert f"{proposal}: overridden F1: {OVERRIDE}" in words(cora, "#flashes")
    assert cora.locator(f'section[data-proposal="{proposal}"]').count() == 0

    ana.reload()
    panel = words(ana, "#approval")
    assert "Status pending" in panel
    assert f"overridden by cora: {OVERRIDE}" in panel
    assert "Approve: not now — whoever prepared a proposal cannot approve it: four eyes" in panel
    assert ana.get_by_role("button", name="Approve", exact=True).count() == 0

    pam = signed_in(browser, firm, "pam")
    pam.get_by_role("link", name="Approvals").click()
    pam.wait_for_url(f"{firm.base}/approvals")
    row = pam.locator(f'tr[data-proposal="{proposal}"]')
    assert "ana" in row.inner_text()  # who prepared it, in the inbox
    pam.goto(f"{firm.base}/proposals/{proposal}")
    pam.locator("#approval").get_by_role("button", name="Approve", exact=True).click()
    pam.wait_for_selector("#approval .flash")  # the panel drawn again, in place (htmx)
    assert pam.url == f"{firm.base}/proposals/{proposal}"
    panel = words(pam, "#approval")
    assert f"{proposal}: approved" in panel
    assert "Status approved" in panel
    assert "Approved by pam" in panel

    steps = [
        ("proposal.check", "system", ""),
        ("proposal.override", "cora", OVERRIDE),
        ("proposal.approve", "pam", ""),
    ]
    assert ledger(firm, proposal)[-3:] == steps
    cora.goto(f"{firm.base}/audit?subject={quote(proposal)}")
    shown = [
        tuple(" ".join(c.split()) for c in row.locator("td").all_inner_texts())
        for row in cora.locator("#entries tbody tr").all()
    ]  # entry, when, who, action, about, why: the newest first
    assert {about for _, _, _, _, about, _ in shown} == {proposal}
    assert [(a, who, why) for _, _, who, a, _, why in reversed(shown) if a in ACTS] == steps
    for page in (ana, cora, pam):
        page.context.close()
