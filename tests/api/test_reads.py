"""The API's reads of what the commands show: reference data, transactions, drift and
holds, requests, proposals, runs and backtests — on the small firm of
``tests.api.reads_firm`` (H1 rebalanced by a run, H2 not).

Each route pages as every list does, filters, answers 404 for an id it does not know,
304 for an ETag held, and money, prices and quantities as exact decimal strings. Where
a command prints the same thing with ``--json``, the API's answer is that very document
(one function makes both). On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, get_args

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import add_people, build
from tests.conftest import postgres_schema_url
from typer.testing import CliRunner

from poise.api.app import API_PREFIX, create_app
from poise.api.routes import book, monitoring, proposals, runs
from poise.cli import app as cli
from poise.domain.money import ZERO, cents
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo

PEOPLE: dict[str, tuple[Role, dict[str, Any]]] = {
    "operations": (Role.OPERATIONS, {}),
    "adviser_h1": (Role.ADVISER, {"households": ["H1"]}),
    "adviser_h2": (Role.ADVISER, {"households": ["H2"]}),
    "client_h1": (Role.CLIENT, {"household_id": "H1"}),
    "client_h2": (Role.CLIENT, {"household_id": "H2"}),
}


@dataclass(frozen=True)
class Firm:
    engine: sa.Engine
    examples: dict[str, str]
    tokens: dict[str, str]
    client: TestClient

    def get(self, path: str, who: str = "operations", **headers: str) -> Any:
        auth = {"Authorization": f"Bearer {self.tokens[who]}", **headers}
        return self.client.get(f"{API_PREFIX}{path}", headers=auth)

    def json(self, path: str, who: str = "operations") -> Any:
        answer = self.get(path, who)
        assert answer.status_code == 200, (path, who, answer.status_code, answer.text[:300])
        return answer.json()

    def command(self, *args: str) -> Any:
        """What ``poise <args> --json`` prints, on this firm's store."""
        url = self.engine.url.render_as_string(hide_password=False)
        result = CliRunner().invoke(cli, [*args, "--json", "--database-url", url])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def firm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Firm]:
    """The firm on each database (PostgreSQL: a schema of its own, dropped at the end)."""
    urls = iter([None]) if request.param == "sqlite" else postgres_schema_url()
    engine, examples = build(tmp_path_factory.mktemp("firm"), next(urls))
    tokens = add_people(engine, PEOPLE)
    app = create_app(Settings(), engine=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Firm(engine, examples, tokens, client)
    engine.dispose()
    next(urls, None)


def ids(page: dict[str, Any], key: str) -> list[str]:
    return [item[key] for item in page["items"]]


# ── reference data ───────────────────────────────────────────────────────────


def test_securities_when_paged_then_in_order_of_id_with_the_total(firm: Firm) -> None:
    first = firm.json("/securities?limit=3")
    second = firm.json("/securities?limit=3&offset=3")
    assert ids(first, "security_id") == ["AAPL", "BOND", "MSFT"]
    assert ids(second, "security_id") == ["SPYA", "SPYB", "TOTL"]
    assert (first["total"], first["limit"], second["offset"]) == (7, 3, 3)


def test_securities_when_filtered_then_only_those(firm: Firm) -> None:
    assert ids(firm.json("/securities?asset_class=fixed_income"), "security_id") == ["BOND"]
    assert ids(firm.json("/securities?kind=etf"), "security_id") == ["SPYA", "SPYB", "TOTL"]


def test_security_when_read_then_its_trading_grid_and_latest_price_exact(firm: Firm) -> None:
    spya = firm.json("/securities/SPYA", who="client_h2")  # market facts: a client's too
    assert spya["trade_unit"] == "fraction"
    assert spya["trade_step"] == "0.001"
    assert spya["identity_group"] == "SP500"
    assert spya["replacements"] == ["TOTL"]
    assert (spya["price"], spya["price_as_of"]) == ("381.2", "2022-12-28T00:00:00+00:00")


def test_model_when_read_then_its_sleeves_resolve_to_exact_weights(firm: Firm) -> None:
    core = firm.json("/models/CORE", who="client_h1")
    weights = {w["security_id"]: w["weight"] for w in core["resolved"]["securities"]}
    assert weights == {"AAPL": "0.18", "MSFT": "0.18", "SPYA": "0.24", "BOND": "0.38"}
    assert core["resolved"]["cash"] == "0.02"
    assert {(t["kind"], t["target_id"], t["weight"]) for t in core["targets"]} >= {
        ("model", "EQ", "0.6"), ("model", "FI", "0.38"), ("cash", "", "0.02")
    }  # fmt: skip
    assert core["unresolved"] is None
    assert ids(firm.json("/models"), "model_id") == ["CORE", "EQ", "FI"]


def test_prices_when_filtered_by_security_and_days_then_those_only(firm: Firm) -> None:
    aapl = firm.json("/prices?security_id=AAPL")
    assert aapl["items"] == [
        {"security_id": "AAPL", "as_of": "2022-12-28T00:00:00+00:00", "price": "126.04",
         "source": "close"}
    ]  # fmt: skip
    assert firm.json("/prices?since=2022-12-29")["total"] == 0
    assert firm.json("/prices?since=2022-12-28&until=2022-12-28")["total"] == 7
    assert firm.json("/prices?until=9999-12-31&limit=2")["total"] == 7  # the last day there is
    assert len(firm.json("/prices?limit=2&offset=6")["items"]) == 1


# ── the book ─────────────────────────────────────────────────────────────────


def test_account_when_read_then_its_holdings_add_up_exactly_in_the_documented_shape(
    firm: Firm,
) -> None:
    answer = firm.get("/accounts/10000001", who="client_h1")
    assert answer.status_code == 200
    # Written without a model: exactly AccountDetail's fields, in its order, no others.
    body = book.AccountDetail.model_validate_json(answer.content)
    assert body.model_dump_json().encode() == answer.content
    with firm.engine.connect() as connection:
        account = repo.account(connection, account_id="10000001")
        lots = repo.account_lots(connection, account_id="10000001")
        prices = repo.latest_prices(connection)
    held: dict[str, Decimal] = {}
    for lot in lots:
        held[lot.security_id] = held.get(lot.security_id, ZERO) + lot.quantity
    assert {h.security_id: Decimal(h.quantity) for h in body.holdings} == held
    assert [h.security_id for h in body.holdings] == sorted(held)
    total = account.cash + sum((q * prices[s][0] for s, q in held.items()), ZERO)
    assert body.value == str(cents(total))
    for h in body.holdings:
        assert h.price == str(prices[h.security_id][0])
        assert h.weight == f"{Decimal(h.quantity) * prices[h.security_id][0] / total:.6f}"


# ── transactions ─────────────────────────────────────────────────────────────


def test_transactions_when_paged_then_by_trade_date_with_a_sales_lots(firm: Firm) -> None:
    page = firm.json("/accounts/10000001/transactions?limit=2&offset=2", who="client_h1")
    assert page["total"] == 3
    (sale,) = page["items"]
    assert sale["txn_id"] == "T1003"
    assert (sale["kind"], sale["quantity"], sale["amount"]) == ("sell", "30", "4470.123")
    assert sale["lots"] == [{"lot_id": "L1", "quantity": "10"}, {"lot_id": "L2", "quantity": "20"}]


def test_household_transactions_when_filtered_then_every_account_of_it(firm: Firm) -> None:
    every = firm.json("/households/H1/transactions")
    assert ids(every, "txn_id") == ["T1001", "T1002", "T1003", "T2001"]
    assert ids(firm.json("/households/H1/transactions?kind=fee"), "txn_id") == ["T2001"]
    since = firm.json("/households/H1/transactions?since=2022-11-14&until=2022-11-30")
    assert ids(since, "txn_id") == ["T1003"]
    assert firm.get("/households/H1/transactions?kind=gift").status_code == 422


def test_transactions_when_the_account_is_another_households_then_404(firm: Firm) -> None:
    answer = firm.get("/accounts/10000001/transactions", who="adviser_h2")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no account 10000001"


# ── drift, holds, requests ───────────────────────────────────────────────────


def test_drift_when_asked_then_the_most_drifted_in_scope_as_poise_drift_shows_them(
    firm: Firm,
) -> None:
    page = firm.json("/drift?as_of=2022-12-28&all=true")
    shown = firm.command("drift", "--as-of", "2022-12-28", "--all", "--limit", "0")
    assert page["items"] == shown["accounts"]
    assert (page["as_of"], page["accounts_total"]) == ("2022-12-28T23:59:59+00:00", 3)
    drifts = [row["max_drift"] for row in page["items"]]
    assert drifts == sorted(drifts, reverse=True)
    assert all(isinstance(row["value"], str) for row in page["items"])
    mine = firm.json("/drift?as_of=2022-12-28&all=true", who="adviser_h2")
    assert ids(mine, "account_id") == ["10000003"]
    assert mine["accounts_total"] == 1
    one = firm.json("/drift?as_of=2022-12-28&all=true&household_id=H1&limit=1&offset=1")
    assert (one["total"], len(one["items"])) == (2, 1)


def test_drift_when_as_of_is_no_time_then_422(firm: Firm) -> None:
    for text in ("yesterday", "0001-01-01", "2022-13-01"):
        answer = firm.get(f"/drift?as_of={text}")
        assert answer.status_code == 422, (text, answer.text)
        assert "as_of" in answer.json()["detail"]


def test_holds_when_prices_are_stale_then_each_account_in_scope_is_held(firm: Firm) -> None:
    assert firm.json("/holds?as_of=2022-12-28")["total"] == 0
    now = firm.json("/holds", who="adviser_h2")  # the firm's prices are of 2022: stale now
    assert {h["account_id"] for h in now["items"]} == {"10000003"}
    assert {h["cause"] for h in now["items"]} == {"stale_price"}
    assert "BOND" in now["flagged"]


def test_requests_when_filtered_then_within_scope(firm: Firm) -> None:
    every = firm.json("/requests")
    assert every["total"] == 3
    assert firm.json("/requests", who="adviser_h1")["items"] == [
        r for r in every["items"] if r["request_id"].startswith("10000001/")
    ]
    h2 = ids(firm.json("/requests", who="client_h2"), "request_id")
    assert sorted(h2) == ["10000003/2022-12-28/manual", "household:H2/2022-12-28/manual"]
    assert firm.json("/requests?status=open")["total"] == 2
    assert firm.json("/requests?household_id=H2&limit=1")["total"] == 2
    assert firm.get("/requests?status=closed").status_code == 422
    shown = firm.command("requests", "list", "--limit", "0")
    assert every["items"] == shown["requests"]


def test_request_when_read_then_the_proposal_that_answers_it(firm: Firm) -> None:
    request_id = firm.examples["request_id"]
    found = firm.json(f"/requests/{request_id}", who="client_h1")
    assert (found["status"], found["answered_by"]) == ("answered", firm.examples["proposal_id"])
    whole = firm.json("/requests/household:H2/2022-12-28/manual", who="client_h2")
    assert whole["account_id"] is None
    answer = firm.get("/requests/household:H2/2022-12-28/manual", who="client_h1")
    assert answer.json()["detail"] == "no request household:H2/2022-12-28/manual"
    assert firm.get("/requests/nothing/like/this").status_code == 404


# ── proposals ────────────────────────────────────────────────────────────────


def test_proposal_when_read_then_what_poise_proposals_show_prints(firm: Firm) -> None:
    proposal_id = firm.examples["proposal_id"]
    found = firm.json(f"/proposals/{proposal_id}", who="adviser_h1")
    assert found == firm.command("proposals", "show", proposal_id)
    assert found["cash_before"] == "2500"  # money exact, as kept
    (sale,) = [t for t in found["trades"] if t["side"] == "sell"]
    assert (sale["quantity"], sale["price"], sale["value"]) == ("108", "126.04", "13612.32")
    assert {lot["gain"] for lot in sale["lots"]} == {"-2448.50", "-1389.68"}
    assert isinstance(found["drift_before"], float)  # a ratio, rounded to six places


def test_household_proposal_when_read_then_each_accounts_proposal_whole(firm: Firm) -> None:
    household_id = firm.examples["household_proposal_id"]
    found = firm.json(f"/household-proposals/{household_id}", who="client_h1")
    assert found == firm.command("proposals", "show", household_id)
    assert [p["account_id"] for p in found["accounts"]] == ["10000001", "10000002"]
    assert found["run_id"] == firm.examples["run_id"]


def test_proposals_when_listed_then_summary_rows_as_poise_proposals_list(firm: Firm) -> None:
    every = firm.json("/proposals")
    assert every["items"] == firm.command("proposals", "list", "--limit", "0")["proposals"]
    assert every["total"] == 2
    one = firm.json("/proposals?account_id=10000002")
    assert ids(one, "proposal_id") == ["10000002/2022-12-28/bands"]
    assert one["items"][0]["trade_count"] == 2
    assert firm.json("/proposals?household_id=H1&limit=1&offset=1")["total"] == 2
    assert firm.json("/proposals?status=superseded")["total"] == 0
    assert firm.json("/proposals", who="client_h2")["total"] == 0
    assert firm.json("/proposals?status=approved")["total"] == 0  # the approval machine's
    assert firm.get("/proposals?status=waiting").status_code == 422


def test_proposal_when_unknown_then_404_naming_it(firm: Firm) -> None:
    answer = firm.get("/proposals/10000001/1999-01-01/bands")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no proposal 10000001/1999-01-01/bands"
    answer = firm.get("/household-proposals/H9/2022-12-28/bands")
    assert answer.json()["detail"] == "no household proposal H9/2022-12-28/bands"


# ── runs and backtests ───────────────────────────────────────────────────────


def test_run_when_read_then_what_poise_runs_show_prints(firm: Firm) -> None:
    run_id = firm.examples["run_id"]
    found = firm.json(f"/runs/{run_id}")
    assert found == firm.command("runs", "show", run_id)
    assert found["summary"]["estimated_tax"] == "-1183.88"
    assert firm.json("/runs")["items"] == firm.command("runs", "list", "--limit", "0")
    assert firm.json("/runs?status=finished")["total"] == 1
    assert firm.json("/runs?status=running")["total"] == 0


def test_runs_when_an_adviser_asks_then_403_for_the_list_and_404_for_one(firm: Firm) -> None:
    listed = firm.get("/runs", who="adviser_h1")
    assert listed.status_code == 403
    assert "only these roles" in listed.json()["detail"]
    one = firm.get(f"/runs/{firm.examples['run_id']}", who="adviser_h1")
    assert one.json()["detail"] == f"no run {firm.examples['run_id']}"
    assert firm.get("/runs/20000101-000000-0000").json()["detail"] == "no run 20000101-000000-0000"


def test_backtest_when_read_then_what_poise_backtests_show_prints(firm: Firm) -> None:
    backtest_id = firm.examples["backtest_id"]
    found = firm.json(f"/backtests/{backtest_id}", who="adviser_h2")
    assert found == firm.command("backtests", "show", backtest_id)
    assert (found["from"], found["to"]) == ("2022-01-03", "2022-12-28")
    assert found["methods"]["bands"]["summary"]["after_tax_return"] == 0.041235
    assert firm.json("/backtests")["items"] == firm.command("backtests", "list", "--limit", "0")
    assert firm.json("/backtests?model_id=EQ")["total"] == 0
    assert firm.get("/backtests", who="client_h1").status_code == 403
    assert firm.get(f"/backtests/{backtest_id}", who="client_h1").status_code == 404


# ── what every read does ─────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "path",
    ["/securities", "/models/CORE", "/prices", "/households/H1/transactions", "/requests",
     "/proposals", "/proposals/{proposal_id}", "/household-proposals/{household_proposal_id}",
     "/runs/{run_id}", "/backtests", "/drift?as_of=2022-12-28"],
)  # fmt: skip
def test_read_when_its_etag_is_held_then_304(firm: Firm, path: str) -> None:
    url = path.format(**firm.examples)
    first = firm.get(url)
    assert first.status_code == 200
    again = firm.get(url, **{"If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")


@pytest.mark.parametrize("path", ["/securities/ZZZ", "/models/NOPE", "/backtests/0123abcd"])
def test_object_of_no_household_when_unknown_then_404(firm: Firm, path: str) -> None:
    answer = firm.get(path, who="client_h1")
    assert answer.status_code == 404
    assert answer.json()["detail"].startswith("no ")


def test_statuses_when_documented_then_they_are_the_stores(firm: Firm) -> None:
    assert get_args(monitoring.RequestStatus) == repo.REQUEST_STATUSES
    assert get_args(proposals.ProposalStatus) == repo.PROPOSAL_STATUSES
    assert get_args(runs.RunStatus) == repo.RUN_STATUSES
