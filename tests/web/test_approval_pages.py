"""Approvals on the pages, signed in as a browser is (a session, the forms' tokens): a
proposal's approval panel shows where it stands and only the acts the user may do
(each other one with why not); the inbox lists what waits for the user and approves
one, or all shown; the compliance queue clears findings — an override for compliance
alone; and a form without its token is refused.

The firm is ``tests.api.reads_firm``'s: H1's household proposal of a run, pending with a
warning, and account proposals made by its advisers through the pages' Rebalance now
or the workflow (``prepared_by``), given findings by the compliance shell's check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import AS_OF, WARNING, build

from poise.api import auth, security
from poise.api.app import create_app
from poise.comply.findings import Finding, Severity
from poise.domain.approvals import Policy
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.workflow.approvals import check, findings_of
from poise.workflow.rebalance import Asked, rebalance_account

PASSWORD = "correct horse battery staple"
PEOPLE = {
    "ana": (Role.ADVISER, ["H1"]),
    "ben": (Role.ADVISER, ["H1"]),
    "hal": (Role.ADVISER, ["H2"]),
    "pam": (Role.PORTFOLIO_MANAGER, []),
    "cora": (Role.COMPLIANCE, []),
    "olu": (Role.OPERATIONS, []),
}
BLOCK = Finding(
    rule_id="firm/restricted", kind="restricted_list", severity=Severity.BLOCK,
    measured="true", limit="false", explanation="AAPL is on the firm's restricted list",
)  # fmt: skip


@dataclass(frozen=True)
class Firm:
    engine: sa.Engine
    examples: dict[str, str]
    users: dict[str, str]  # username → user id

    def propose(self, who: str, account_id: str = "10000001", *found: Finding) -> str:
        """``who`` rebalances the account (optimize: no household's part superseded);
        the rules found ``found``."""
        made = rebalance_account(
            self.engine, account_id=account_id, as_of=AS_OF, asked=Asked(method="optimize"),
            settings=Settings(), prepared_by=self.users[who],
        )  # fmt: skip
        check(self.engine, proposal_id=made.proposal_id, findings=findings_of(found),
              policy=Policy())  # fmt: skip
        return made.proposal_id


@pytest.fixture
def firm(tmp_path: Path) -> Iterator[Firm]:
    engine, examples = build(tmp_path)
    hashed = security.hash_password(PASSWORD)
    with engine.begin() as connection:
        users = {
            name: repo.add_user(connection, username=name, role=role, households=households,
                                password_hash=hashed).user_id
            for name, (role, households) in PEOPLE.items()
        }  # fmt: skip
    yield Firm(engine, examples, users)
    engine.dispose()


@pytest.fixture
def app(firm: Firm) -> object:
    auth._attempts = auth._Attempts()  # sign-ins are throttled by address: a minute of its own
    return create_app(Settings(workers=1, cookie_secure=False), engine=firm.engine)


@pytest.fixture
def browser(app: object) -> Iterator[Browser]:
    with TestClient(app) as client:  # type: ignore[arg-type]
        yield Browser(client)


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

    def send(self, path: str, form: dict[str, str | list[str]], *, from_page: str,
             **headers: str) -> httpx.Response:  # fmt: skip
        return self.client.post(path, data={"csrf": token(from_page), **form},
                                headers=headers, follow_redirects=False)  # fmt: skip


def token(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found[1]


def rows(page: str) -> list[str]:
    """The proposals a page lists, in its order."""
    return re.findall(r'<tr data-proposal="([^"]+)"', page)


def text(html: str) -> str:
    """A page's words, as a reader reads them: no tags, one space between words."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_panel_when_the_preparer_looks_then_no_approve_button_and_why(
    browser: Browser, firm: Firm
) -> None:
    proposal = firm.propose("ana")
    page = browser.sign_in("ana").get(f"/proposals/{proposal}")
    words = text(page)
    assert "Approval" in words
    assert "Prepared by ana (you: another person approves it — four eyes)" in words
    assert "Approve: not now — whoever prepared a proposal cannot approve it: four eyes" in words
    assert 'name="act" value="approve"' not in page
    assert 'name="act" value="reject"' in page  # an adviser may reject it, with a reason
    assert 'name="act" value="release"' not in page  # never an adviser's: not shown at all
    other = browser.sign_in("ben").get(f"/proposals/{proposal}")
    assert 'name="act" value="approve"' in other
    assert "Approved by nobody yet" in text(other)


def test_panel_when_approved_by_its_form_then_the_page_says_so_and_shows_who(
    browser: Browser, firm: Firm
) -> None:
    proposal = firm.propose("ana")
    page = browser.sign_in("ben").get(f"/proposals/{proposal}")
    form = {"proposal_id": proposal, "act": "approve", "back": f"/proposals/{proposal}"}
    sent = browser.send("/approvals/act", form, from_page=page)
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/proposals/{proposal}"
    after = text(browser.get(f"/proposals/{proposal}"))
    assert f"{proposal}: approved" in after  # said once, on the next page
    assert "Status approved" in after
    assert "Approved by ben" in after
    assert f"{proposal}: approved" not in text(browser.get(f"/proposals/{proposal}"))


def test_panel_when_sent_by_htmx_then_the_panel_is_drawn_again_with_what_came_of_it(
    browser: Browser, firm: Firm
) -> None:
    proposal = firm.propose("ana", "10000001", WARNING)
    page = browser.sign_in("ben").get(f"/proposals/{proposal}")
    assert 'name="act" value="acknowledge"' in page
    assert "Approve: not now — acknowledge the warnings first: F1" in text(page)
    form = {"proposal_id": proposal, "act": "approve", "panel": proposal}
    refused = browser.send("/approvals/act", form, from_page=page, **{"HX-Request": "true"})
    assert refused.status_code == 200
    drawn = refused.text
    assert drawn.lstrip().startswith("<")
    assert "<html" not in drawn  # the panel alone
    assert "Not approved: acknowledge the warnings first: F1" in text(drawn)
    done = browser.send(
        "/approvals/act",
        {**form, "act": "acknowledge", "finding_id": "F1", "reason": "client asked"},
        from_page=page, **{"HX-Request": "true"},
    )  # fmt: skip
    assert "acknowledged F1: client asked" in text(done.text)
    assert "acknowledged by ben: client asked" in text(done.text)
    assert 'name="act" value="approve"' in done.text


def test_panel_when_the_account_proposal_is_part_of_a_households_then_it_acts_on_that_one(
    browser: Browser, firm: Firm
) -> None:
    part, household = firm.examples["proposal_id"], firm.examples["household_proposal_id"]
    page = browser.sign_in("ben").get(f"/proposals/{part}")
    assert f"part of household H1's proposal {household}" in text(page)
    assert f'name="proposal_id" value="{household}"' in page
    assert f"F1 warning firm/cash {WARNING.explanation}" in text(page)


def test_inbox_when_an_adviser_opens_it_then_what_waits_for_them_with_the_four_eyes(
    browser: Browser, firm: Firm
) -> None:
    household = firm.examples["household_proposal_id"]
    anas = firm.propose("ana")
    bens = firm.propose("ben", "10000002")
    page = browser.sign_in("ben").get("/approvals")
    listed = rows(page)
    assert listed == [household, anas]  # not ben's own: four eyes
    assert bens not in listed
    words = text(page)
    assert "F1 warning: " + WARNING.explanation in words  # the household's waits on it
    assert "Not yet: acknowledge the warnings first: F1" in words
    sent = browser.send("/approvals", {"pick": "all", "shown": listed}, from_page=page)
    assert sent.headers["location"] == "/approvals"
    after = browser.get("/approvals")
    said = text(after)
    assert f"{anas}: approved" in said
    assert f"{household}: not approved — acknowledge the warnings first: F1" in said
    assert rows(after) == [household]
    assert rows(browser.sign_in("ana").get("/approvals")) == [
        household, bens
    ]  # fmt: skip


def test_inbox_when_ticked_and_filtered_then_only_those(browser: Browser, firm: Firm) -> None:
    anas = firm.propose("ana")
    other = firm.propose("ana", "10000002")
    page = browser.sign_in("pam").get("/approvals?max_notional=1000000000")
    sent = browser.send("/approvals", {"pick": "selected", "proposal_id": [other],
                                       "max_notional": "1000000000"}, from_page=page)  # fmt: skip
    assert sent.headers["location"] == "/approvals?max_notional=1000000000"
    after = browser.get("/approvals?max_notional=1000000000")
    assert f"{other}: approved" in text(after)
    assert anas in rows(after)
    assert rows(browser.get("/approvals?max_notional=0")) == []
    nothing = browser.send("/approvals", {"pick": "selected"}, from_page=page)
    assert nothing.status_code == 303
    assert "choose the proposals to approve first" in text(browser.get("/approvals"))


def test_queue_when_compliance_overrides_a_block_then_it_leaves_the_queue(
    browser: Browser, firm: Firm
) -> None:
    blocked = firm.propose("ana", "10000001", BLOCK)
    seen = browser.sign_in("ana").get("/compliance")
    assert blocked in re.findall(r'data-proposal="([^"]+)"', seen)
    assert "not cleared: only these roles may override a proposal: compliance" in text(seen)
    assert 'value="override"' not in seen
    page = browser.sign_in("cora").get("/compliance")
    assert 'value="override"' in page
    sent = browser.send("/approvals/act", {"proposal_id": blocked, "act": "override",
                                           "finding_id": "F1", "reason": "list out of date",
                                           "back": "/compliance"}, from_page=page)  # fmt: skip
    assert sent.headers["location"] == "/compliance"
    after = browser.get("/compliance")
    assert f"{blocked}: overridden F1: list out of date" in text(after)
    assert blocked not in re.findall(r'data-proposal="([^"]+)"', after)


@pytest.mark.parametrize(
    ("who", "inbox", "queue"),
    [("ana", 200, 200), ("pam", 200, 200), ("cora", 404, 200), ("olu", 404, 200)],
)
def test_pages_when_a_role_opens_them_then_only_those_it_uses_and_its_links(
    browser: Browser, who: str, inbox: int, queue: int
) -> None:
    browser.sign_in(who)
    assert browser.client.get("/approvals").status_code == inbox
    assert browser.client.get("/compliance").status_code == queue
    home = browser.get("/")
    assert ('href="/approvals"' in home) == (inbox == 200)
    assert 'href="/compliance"' in home


def test_act_when_the_form_has_no_token_or_another_households_then_refused(
    browser: Browser, firm: Firm
) -> None:
    proposal = firm.propose("ana")
    browser.sign_in("ben")
    tokenless = browser.client.post("/approvals/act", data={"proposal_id": proposal,
                                                            "act": "approve"})  # fmt: skip
    assert tokenless.status_code == 403
    page = browser.sign_in("hal").get("/approvals")
    assert proposal not in page
    other = browser.send("/approvals/act", {"proposal_id": proposal, "act": "reject",
                                            "reason": "no"}, from_page=page)  # fmt: skip
    assert other.status_code == 404
    assert browser.client.get(f"/proposals/{proposal}").status_code == 404
