"""The API keeps the promises of its OpenAPI document, on every operation it lists.

Schemathesis reads the document from the application itself (in process, over ASGI:
no server, no network) and, for each operation, makes requests from what the document
says — valid ones, boundary values, and some it ought to refuse — against the small
firm of two households, H1 and H2: with a personal access token of a firm-wide user
(operations), and with one of H2's adviser, to whom every H1 object is a 404; on
SQLite, and on PostgreSQL as the firm-wide user. A path parameter is as generated, or
one of the firm's real ids where it names a household or an account (so that answers
with data are checked, not only "not found"), or a text with a NUL in it — as is, now
and then, every text of a query: PostgreSQL refuses such a text, so the API must
refuse it first.

Every answer must be no server error (no 5xx), a status code the operation documents,
in a content type documented for that status, with a body that matches its schema and
the headers it documents. Routes are found in the document, never named here: a new
route is tested as soon as it is served. Bounded — a few examples an operation,
derandomised, so that every run (CI's too) makes the same requests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.conftest import postgres_schema_url
from tests.firm_files import write_firm

from poise.api import auth, security
from poise.api.app import API_PREFIX, create_app
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
PEOPLE = {
    "operations": (Role.OPERATIONS, {}),  # sees the whole firm
    "adviser_h2": (Role.ADVISER, {"households": ["H2"]}),  # sees H2 only: H1 is a 404
}
# Who asks, on which database: both people on SQLite; the firm-wide user on PostgreSQL
# too, for what only a server refuses (a NUL in a text, an integer past 64 bits). Who
# may see what is the same SQL on both.
RUNS = [("sqlite", "operations"), ("sqlite", "adviser_h2"), ("postgres", "operations")]
STREAM = f"{API_PREFIX}/events"  # server-sent events: open for as long as asked
REAL_IDS = {  # tests.firm_files' firm: H1 with two accounts, H2 with one
    "household_id": ["H1", "H2"],
    "account_id": ["10000001", "10000002", "10000003"],
}

# The document is read from the application, in process, as the module loads, so that
# each operation is collected as a test of its own. The application is made on a
# SQLite store of its own, as `poise serve` makes it; the fixture `sqlite_firm` fills it.
# Without the API's rate limit: its hundreds of requests a minute as one user are a
# test's, not a caller's, and a 429 (documented) would pass where an answer went unseen.
SETTINGS = Settings(api_rate=0)
_FOLDER = tempfile.TemporaryDirectory(prefix="poise-test-schema-")
_SQLITE = make_engine(f"sqlite:///{Path(_FOLDER.name) / 'poise.db'}")
upgrade(_SQLITE)
schema = schemathesis.openapi.from_asgi(
    f"{API_PREFIX}/openapi.json", create_app(SETTINGS, engine=_SQLITE)
)


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """As generated; else the firm's real ids for the parameters that name its objects;
    else every text with a NUL in it."""
    if not path_parameters:
        return st.just(path_parameters)
    known = {name: REAL_IDS[name] for name in path_parameters if name in REAL_IDS}
    real = st.fixed_dictionaries({name: st.sampled_from(ids) for name, ids in known.items()})
    return st.one_of(
        st.just(path_parameters),
        real.map(lambda r: {**path_parameters, **r}),
        st.just(_with_nul(path_parameters)),
    )


@schema.hook
def flatmap_query(
    context: schemathesis.HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """As generated, or now and then with a NUL in every text."""
    if not query or not any(isinstance(v, str) for v in query.values()):
        return st.just(query)
    return st.sampled_from([query, query, query, _with_nul(query)])


def _with_nul(values: dict[str, Any]) -> dict[str, Any]:
    """A NUL in each text: SQLite keeps one, PostgreSQL refuses any text that holds one,
    so a request must be refused (404, 422) before the text reaches the database."""
    return {name: f"{v}\x00" if isinstance(v, str) else v for name, v in values.items()}


@dataclass(frozen=True, slots=True)
class Firm:
    app: FastAPI
    tokens: dict[str, str]  # username → a personal access token


@pytest.fixture(scope="module")
def sqlite_firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    """The firm in the SQLite store the document's application was made on."""
    yield _firm(_SQLITE, schema.app, tmp_path_factory.mktemp("firm"))
    _SQLITE.dispose()


@pytest.fixture(scope="module")
def postgres_firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    """The firm in a PostgreSQL schema of its own (dropped at the end), served by an
    application of its own."""
    urls = postgres_schema_url()
    engine = make_engine(next(urls))
    upgrade(engine)
    yield _firm(engine, create_app(SETTINGS, engine=engine), tmp_path_factory.mktemp("firm"))
    engine.dispose()
    next(urls, None)


def _firm(engine: sa.Engine, app: FastAPI, folder: Path) -> Firm:
    """The two-household firm, loaded into ``engine``, with a personal access token
    (read and write) for each of :data:`PEOPLE`."""
    ingest_paths(engine, write_firm(folder), today=datetime.now(UTC).date())
    tokens: dict[str, str] = {}
    with engine.begin() as connection:
        for username, (role, kw) in PEOPLE.items():
            user = repo.add_user(connection, username=username, role=role, **kw)  # type: ignore[arg-type]
            token_id, secret, text = security.new_token()
            repo.add_token(
                connection, user_id=user.user_id, token_id=token_id,
                secret_hash=security.token_hash(secret), name="tests", scopes=["read", "write"],
            )  # fmt: skip
            tokens[username] = text
    assert _accounts(engine) == REAL_IDS["account_id"]
    return Firm(app, tokens)


def _accounts(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(
            a.account_id
            for household_id in REAL_IDS["household_id"]
            for a in repo.accounts(connection, household_id=household_id)
        )


@pytest.fixture(autouse=True, scope="module")
def _own_minute() -> Iterator[None]:
    """Sign-ins are throttled by address, in the process: this module's, a minute of its own."""
    before = auth._attempts
    auth._attempts = auth._Attempts()
    yield
    auth._attempts = before


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@pytest.mark.parametrize(("database", "who"), RUNS)
def test_operation_when_called_with_a_valid_token_then_it_answers_as_documented(
    case: schemathesis.Case, database: str, who: str, request: pytest.FixtureRequest
) -> None:
    firm: Firm = request.getfixturevalue(f"{database}_firm")
    token = {"Authorization": f"Bearer {firm.tokens[who]}"}
    if case.path == STREAM:  # asked to end at once: tests/api/test_events.py follows one
        case.query = {**(case.query or {}), "seconds": 0}
    case.call_and_validate(app=firm.app, headers=token, checks=CHECKS)
