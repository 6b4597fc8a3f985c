"""The books' pages, signed in as a browser is, on the firm of
``tests.workflow.test_custodian`` (a fill allocated and not booked, a split the books do
not know, a cash difference): operations books and compares from ``/books``, sees the
breaks that hold accounts and resolves one with a reason; an adviser sees none of it,
but sees their household's performance and tax year."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.web.test_execution_pages import PASSWORD, Browser, section, token
from tests.workflow.test_custodian import DAY, firm

from poise.api import auth, security
from poise.api.app import create_app
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade

PEOPLE = {
    "olu": (Role.OPERATIONS, {}),
    "cora": (Role.COMPLIANCE, {}),
    "ana": (Role.ADVISER, {"households": ["H1"]}),
    "bob": (Role.ADVISER, {"households": []}),
}


@pytest.fixture
def engine_(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    firm(engine)
    hashed = security.hash_password(PASSWORD)
    with engine.begin() as connection:
        for name, (role, kw) in PEOPLE.items():
            repo.add_user(connection, username=name, role=role, name=name.title(),
                          password_hash=hashed, **kw)  # fmt: skip
    yield engine
    engine.dispose()


@pytest.fixture
def browser(engine_: sa.Engine) -> Iterator[Browser]:
    auth._attempts = auth._Attempts()
    with TestClient(create_app(Settings(workers=1, cookie_secure=False), engine=engine_)) as c:
        yield Browser(c)


def test_books_when_operations_books_and_resolves_then_the_page_says_so(browser: Browser) -> None:
    page = browser.sign_in("olu").get("/books")
    assert '<a href="/books" aria-current="page">Books</a>' in page
    assert "1 fill allocated and not yet booked" in page

    booked = browser.client.post("/books/reconcile", data={"csrf": token(page)},
                                 follow_redirects=False)  # fmt: skip
    page = browser.get("/books")

    assert booked.status_code == 303
    assert "Booked 1 fill; the custodian&#39;s snapshot of" in page
    rows = section(page, "breaks")
    assert "a 2-for-1 split" in rows
    assert "a deposit, withdrawal, fee or dividend the books do not have" in rows
    resolved = browser.client.post(
        "/books/resolve",
        data={"csrf": token(page), "account_id": "A2", "break_id": f"cash:cash:{DAY}",
              "reason": "the deposit is on its way"},
        follow_redirects=False,
    )  # fmt: skip
    page = browser.get("/books")
    assert resolved.status_code == 303
    assert "no longer held for it" in page
    assert "A2" not in section(page, "breaks")
    assert "the deposit is on its way" in section(page, "closed")


def test_books_when_compliance_looks_then_it_sees_but_may_not_book(browser: Browser) -> None:
    page = browser.sign_in("cora").get("/books")

    assert "Book and compare" not in page
    assert "Operations and admins book the fills" in page
    refused = browser.client.post("/books/reconcile", data={"csrf": token(page)},
                                  follow_redirects=False)  # fmt: skip
    assert refused.status_code == 403


def test_performance_when_the_households_adviser_looks_then_returns_and_the_tax_year(
    browser: Browser,
) -> None:
    browser.sign_in("ana")
    assert browser.client.get("/books").status_code == 404
    assert 'href="/books"' not in browser.get("/")

    page = browser.get("/households/H1/performance")

    assert re.search(r"<h1>Performance", page)
    assert '<table id="form-8949">' in page
    assert "Fewer than two days priced" in page  # the firm has one day of prices
    browser.sign_in("bob")
    assert browser.client.get("/households/H1/performance").status_code == 404


def test_statement_when_the_households_people_ask_then_a_pdf_and_others_not_found(
    browser: Browser,
) -> None:
    browser.sign_in("ana")
    page = browser.get("/households/H1")
    assert 'href="/households/H1/statement.pdf"' in page

    pdf = browser.client.get("/households/H1/statement.pdf?quarter=2026Q4")

    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert 'filename="H1-2026Q4.pdf"' in pdf.headers["content-disposition"]
    assert browser.client.get("/households/H1/statement.pdf?quarter=soon").status_code == 422
    browser.sign_in("bob")
    assert browser.client.get("/households/H1/statement.pdf").status_code == 404
