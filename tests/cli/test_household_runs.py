"""poise rebalance for households, as operations people run it: one household or the
whole firm as a run, its summary, the run kept (poise runs), and the household's
proposal shown whole (poise proposals show)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.cli.test_rebalance import AS_OF, load, poise

from poise.domain.errors import ValidationError
from poise.monitor.triggers import Reason, RebalanceRequest
from poise.store import repo
from poise.store.engine import make_engine


def test_rebalance_when_a_household_is_named_then_one_proposal_holds_each_accounts_trades(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path)
    code, text = poise(
        "rebalance", "--household", "H1", "--method", "optimize", "--as-of", AS_OF, "--json",
        database_url=database_url,
    )  # fmt: skip
    assert code == 0, text
    summary = json.loads(text)
    assert (summary["households"], summary["done"], summary["failed"]) == (1, 1, 0)
    assert summary["fanout"] == "inline"  # one household: no processes started

    engine = make_engine(database_url)
    with engine.connect() as connection:
        run = repo.rebalance_run(connection, run_id=summary["run_id"])
        (done,) = repo.run_households(connection, run_id=run.run_id)
    engine.dispose()
    assert run.status == "finished"
    assert done.household_id == "H1"
    assert done.household_proposal_id == f"H1/{AS_OF}/optimize"

    code, text = poise(
        "proposals", "show", f"H1/{AS_OF}/optimize", "--json", database_url=database_url
    )
    assert code == 0, text
    shown = json.loads(text)
    assert shown["household_id"] == "H1"
    assert shown["run_id"] == run.run_id
    assert sorted(p["account_id"] for p in shown["accounts"]) == ["10000001", "10000002"]
    assert {p["household_proposal_id"] for p in shown["accounts"]} == {f"H1/{AS_OF}/optimize"}
    code, text = poise("proposals", "show", f"H1/{AS_OF}/optimize", database_url=database_url)
    assert code == 0
    assert "household H1, optimize" in text


def test_rebalance_when_the_firm_is_run_then_runs_list_and_show_report_it(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POISE_WORKERS", "1")
    load(database_url, tmp_path)
    code, text = poise("rebalance", "--all", "--as-of", AS_OF, database_url=database_url)
    assert code == 0, text
    assert "households" in text
    assert "account proposals" in text
    code, text = poise("runs", "list", "--json", database_url=database_url)
    (run,) = json.loads(text)
    assert (run["status"], run["method"], run["done"], run["failed"]) == ("finished", "bands", 2, 0)
    assert run["selection"]["all"] is True
    code, text = poise("runs", "show", run["run_id"], database_url=database_url)
    assert code == 0
    assert "households done 2, failed 0" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--all", "--household", "H1"), "choose the households one way"),
        (("--all", "--account", "10000001"), "--account and --scenario are for one account"),
        (("--household", "H9"), "no household H9"),
        ((), "give --account, or households to run"),
    ],
)
def test_rebalance_when_the_households_are_asked_wrongly_then_it_says_so(
    database_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    load(database_url, tmp_path)
    with pytest.raises(ValidationError, match=message):  # the CLI's exit 3, with the message
        poise("rebalance", *args, "--as-of", AS_OF, database_url=database_url)


def test_rebalance_when_requests_are_open_then_the_run_takes_their_households_and_answers_them(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path)
    asked = RebalanceRequest(
        "10000003", "H2", (Reason.BAND_BREACH,), datetime(2022, 12, 28, 23, 0, tzinfo=UTC)
    )
    engine = make_engine(database_url)
    with engine.begin() as connection:
        repo.save_requests(connection, requests=[asked.to_payload()], received_at=datetime.now(UTC))
    code, text = poise(
        "rebalance", "--requests", "--as-of", AS_OF, "--json", database_url=database_url
    )
    assert code == 0, text
    summary = json.loads(text)
    assert (summary["households"], summary["requests_answered"]) == (1, 1)  # H2 only
    with engine.connect() as connection:
        (request,) = repo.list_requests(connection)
    engine.dispose()
    assert request["status"] == "answered"
    assert request["answered_by"] == f"10000003/{AS_OF}/bands"
