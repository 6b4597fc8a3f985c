"""The audit ledger's pages, signed in as a browser is (a session, the forms' tokens), on
the ledger of ``tests.audit.ledger_firm`` and one more entry, an override by the
compliance officer: the entries searched and paged, the newest first, each person named;
an entry with its audit path and the checkpoint that signed it, or the ledger as it
stands where none has yet; the button that verifies the whole ledger — and names the
entry an attacker edited in the database. The firm-wide roles see the pages and their
link; an adviser and a client do neither.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.audit.ledger_firm import T0, Built, build
from tests.audit.tampering import edit_entry

from poise.api import auth, security
from poise.api.app import create_app
from poise.audit import ledger
from poise.audit.proofs import inclusion_now
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.web import audit

PASSWORD = "correct horse battery staple"
PEOPLE = {
    "olu": (Role.OPERATIONS, {}),
    "cora": (Role.COMPLIANCE, {}),
    "ana": (Role.ADVISER, {"households": ["H1"]}),
    "garcia": (Role.CLIENT, {"household_id": "H1"}),
}


@dataclass(frozen=True)
class Firm:
    built: Built
    users: dict[str, str]  # username → user id
    override: int  # the seq of cora's override

    @property
    def size(self) -> int:
        return self.override + 1


@pytest.fixture
def firm(tmp_path: Path) -> Iterator[Firm]:
    built = build(tmp_path)
    hashed = security.hash_password(PASSWORD)
    with built.engine.begin() as connection:
        users = {
            name: repo.add_user(connection, username=name, role=role, name=name.title(),
                                password_hash=hashed, **kw).user_id
            for name, (role, kw) in PEOPLE.items()
        }  # fmt: skip
    with built.engine.execution_options(writes=True).begin() as connection:
        made = ledger.append(
            connection, actor=users["cora"], action="proposal.override", data={"finding": "F1"},
            subject="10000003/2026-12-07/bands", reason="the client asked in writing",
            corrects=built.loaded + 1, at=T0.replace(hour=23),
        )  # fmt: skip
    yield Firm(built, users, made.seq)
    built.engine.dispose()


@pytest.fixture
def browser(firm: Firm) -> Iterator[Browser]:
    auth._attempts = auth._Attempts()  # sign-ins are throttled by address: a minute of its own
    settings = Settings(workers=1, cookie_secure=False, audit_key=firm.built.key)
    with TestClient(create_app(settings, engine=firm.built.engine)) as client:
        yield Browser(client)


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

    def verify(self, *, csrf: str | None = None) -> httpx.Response:
        sent = token(self.get("/audit")) if csrf is None else csrf
        return self.client.post("/audit/verify", data={"csrf": sent})


def rows(page: str) -> list[int]:
    """The entries the page's table lists, in its order."""
    body = page.split('<table id="entries">', 1)[1].split("</table>", 1)[0]
    return [int(seq) for seq in re.findall(r'<td class="num"><a href="/audit/(\d+)">', body)]


# ── who sees it ──────────────────────────────────────────────────────────────


@pytest.mark.parametrize("who", ["olu", "cora"])
def test_audit_when_a_firm_wide_role_signs_in_then_the_link_and_the_page(
    browser: Browser, who: str
) -> None:
    page = browser.sign_in(who).get("/")
    assert re.search(r'<nav aria-label="Pages">.*<a href="/audit" >Audit</a>', page, re.S)
    ledger_page = browser.get("/audit")
    assert '<a href="/audit" aria-current="page">Audit</a>' in ledger_page
    assert "<h1>Audit ledger</h1>" in ledger_page


@pytest.mark.parametrize("who", ["ana", "garcia"])
def test_audit_when_an_adviser_or_a_client_signs_in_then_no_link_and_not_found(
    browser: Browser, firm: Firm, who: str
) -> None:
    browser.sign_in(who)
    home = browser.get("/client" if who == "garcia" else "/")
    assert 'href="/audit"' not in home
    for path in ("/audit", "/audit/0", f"/audit/{firm.override}"):
        answer = browser.client.get(path)
        assert answer.status_code == 404, path
        assert "proposal.override" not in answer.text
    assert browser.client.post("/audit/verify", data={"csrf": token(home)}).status_code == 404


# ── the entries ──────────────────────────────────────────────────────────────


def test_entries_when_listed_then_the_newest_first_each_person_named(
    browser: Browser, firm: Firm
) -> None:
    page = browser.sign_in("cora").get("/audit")
    assert rows(page) == list(range(firm.size - 1, -1, -1))
    newest = page.split('<table id="entries">', 1)[1].split("</tr>", 2)[1]
    assert "Cora" in newest  # the user's name, not their id
    assert "proposal.override" in newest
    assert f'corrects <a href="/audit/{firm.built.loaded + 1}">' in newest
    assert "the client asked in writing" in newest
    assert '<a href="/ingest/1">file 1</a>' in page  # a load links to the file
    assert f"{firm.size} entries" in page
    assert "the latest checkpoint, 1, holds the first" in page


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("actor=u-pam", 4),
        ("action=proposal.a*", 6),
        ("subject=10000003%2F2026-12-07%2Fbands", 5),
        ("from=2026-12-07T18%3A00%3A00&action=proposal.*", 4),
        ("to=2026-12-07T10%3A30%3A00&action=proposal.*", 2),
        ("actor=nobody", 0),
    ],
)
def test_entries_when_searched_then_only_those_matching(
    browser: Browser, query: str, count: int
) -> None:
    page = browser.sign_in("olu").get(f"/audit?{query}")
    assert len(rows(page)) == count
    assert f"{count} entr{'y' if count == 1 else 'ies'} found" in page


def test_entries_when_more_than_a_page_then_the_pager_keeps_the_search(
    browser: Browser, firm: Firm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "PAGE", 3)
    browser.sign_in("cora")
    first = browser.get("/audit?action=proposal.*")
    assert rows(first) == [firm.size - 1, firm.size - 2, firm.size - 3]
    older = re.search(r'<a href="(/audit\?offset=3[^"]*)">Older</a>', first)
    assert older is not None
    assert "action=proposal.%2A" in older.group(1)
    second = browser.get(older.group(1).replace("&amp;", "&"))
    assert rows(second) == [firm.size - 4, firm.size - 5, firm.size - 6]
    assert "Newer</a>" in second


def test_entries_when_a_time_cannot_be_read_then_422(browser: Browser) -> None:
    browser.sign_in("cora")
    answer = browser.client.get("/audit?from=last+tuesday")
    assert answer.status_code == 422
    assert "from: &#39;last tuesday&#39; is not a date or an ISO 8601 time" in answer.text


# ── one entry ────────────────────────────────────────────────────────────────


def test_entry_when_a_checkpoint_holds_it_then_its_path_and_the_checkpoint(
    browser: Browser, firm: Firm
) -> None:
    seq = firm.built.loaded + 3
    page = browser.sign_in("cora").get(f"/audit/{seq}")
    with firm.built.engine.connect() as connection:
        proof = inclusion_now(connection, seq=seq)
    assert f"<h1>Entry {seq} <span" in page
    assert proof["entry"]["data_hash"] in page
    assert proof["leaf_hash"] in page
    shown = re.findall(r"<li><code class=\"digest\">([0-9a-f]{64})</code></li>", page)
    assert shown == proof["path"]
    assert "entries that checkpoint 1 signed" in page
    assert proof["checkpoint"]["signature"] in page
    assert f"poise audit prove {seq} --out proof.json" in page
    assert "within the mandate" in page


def test_entry_when_no_checkpoint_holds_it_then_proved_in_the_ledger_as_it_stands(
    browser: Browser, firm: Firm
) -> None:
    page = browser.sign_in("cora").get(f"/audit/{firm.override}")
    assert "No checkpoint holds it yet" in page
    assert f"leaf {firm.override} of {firm.size} entries" in page
    assert "Cora" in page
    assert f'<a href="/audit/{firm.built.loaded + 1}">entry {firm.built.loaded + 1}</a>' in page


@pytest.mark.parametrize("seq", ["999", "abc", "1e3"])
def test_entry_when_there_is_none_then_404(browser: Browser, seq: str) -> None:
    browser.sign_in("cora")
    assert browser.client.get(f"/audit/{seq}").status_code == 404


# ── verifying ────────────────────────────────────────────────────────────────


def test_verify_when_pressed_then_it_says_every_entry_holds(browser: Browser, firm: Firm) -> None:
    answer = browser.sign_in("olu").verify()
    assert answer.status_code == 200
    said = answer.text.split('<div id="verified" role="status">', 1)[1].split("</div>", 1)[0]
    assert f"Verified:</strong> {firm.size} entries, 1 checkpoint (signatures checked)" in said


def test_verify_when_the_form_has_no_token_then_refused(browser: Browser) -> None:
    answer = browser.sign_in("olu").verify(csrf="forged")
    assert answer.status_code == 403
    assert 'id="verified"' not in answer.text


def test_verify_when_an_entry_was_edited_in_the_database_then_it_names_it(
    browser: Browser, firm: Firm
) -> None:
    seq = firm.built.loaded + 4
    edit_entry(firm.built.engine, seq=seq, reason="approved, no questions")
    browser.sign_in("cora")
    said = browser.verify().text.split('<div id="verified" role="status">', 1)[1]
    assert f"Not verified:</strong> entry {seq} was edited" in said
    assert f'<a href="/audit/{seq}">entry {seq}</a>' in said
    page = browser.get(f"/audit/{seq}")
    assert "approved, no questions" in page  # the entry as it stands now
    assert f"It cannot be proved: entry {seq} was edited" in page
