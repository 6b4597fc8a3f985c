"""The poise command, as an operations person or a script uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from tests.firm_files import write_firm
from typer.testing import CliRunner

from poise.cli import app
from poise.domain.errors import ValidationError
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import head_revision

runner = CliRunner()
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
# The shared closes where they are beside the repository; else the copy the package ships.
DATA_ARGS = ("--data-dir", str(SHARED)) if SHARED.is_dir() else ()


def poise(*args: str, database_url: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--database-url", database_url])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def test_demo_when_run_then_it_summarises_the_firm_and_every_row_loads(
    database_url: str, tmp_path: Path
) -> None:
    args = ("demo", "--households", "6", "--load-only", "--out", str(tmp_path / "firm"), *DATA_ARGS)
    code, text = poise(*args, "--json", database_url=database_url)
    assert code == 0
    report = json.loads(text)
    assert report["dropped"] == {}
    assert all(f["loaded"] == f["read"] > 0 for f in report["files"])
    assert all(f["quarantined"] == 0 for f in report["files"])
    summary = report["summary"]
    assert summary["households"] == 6
    assert summary["accounts"] == sum(r["accounts"] for r in summary["by_registration"])

    code, text = poise(*args, "--reset", database_url=database_url)
    assert code == 0, text
    assert "6 households" in text
    assert "largest unrealised gains" in text
    assert "assets by model" in text


def test_ingest_when_files_load_then_json_counts_them_and_accounts_can_be_read_back(
    database_url: str, tmp_path: Path
) -> None:
    paths = [str(p) for p in write_firm(tmp_path)]
    code, text = poise("ingest", *paths, "--json", database_url=database_url)
    assert code == 0, text
    loaded = {f["kind"]: f["loaded"] for f in json.loads(text)}
    assert loaded == {
        "securities": 7,
        "households": 2,
        "models": 8,
        "accounts": 3,
        "lots": 5,
        "prices": 7,
    }

    code, text = poise("accounts", "list", "--json", database_url=database_url)
    assert code == 0
    values = {a["account_id"]: a["value"] for a in json.loads(text)}
    # 10000002: 30 MSFT at 234.53 plus 150.25 cash.
    assert values["10000002"] == "7186.15"

    code, text = poise("accounts", "show", "10000001", "--json", database_url=database_url)
    assert code == 0
    shown = json.loads(text)
    assert shown["account"]["restrictions"]["do_not_buy"] == ["XOM"]
    assert [lot["lot_id"] for lot in shown["lots"]] == ["L1", "L2", "L3"]
    aapl = next(h for h in shown["holdings"] if h["security_id"] == "AAPL")
    assert (aapl["quantity"], aapl["basis"], aapl["value"]) == ("150", "23750.5", "18906.00")


def test_ingest_when_a_row_is_bad_then_strict_exits_3_and_the_quarantine_lists_it(
    database_url: str, tmp_path: Path
) -> None:
    paths = [str(p) for p in write_firm(tmp_path)]
    assert poise("ingest", *paths, database_url=database_url)[0] == 0
    bad = tmp_path / "more-lots.csv"
    bad.write_text(
        "account_id,lot_id,security_id,quantity,cost_basis,acquired\n"
        "10000001,M1,MSFT,10,2000,2021-01-04\n"
        "10000001,M2,MSFT,ten,2000,2021-01-04\n"
    )
    code, _ = poise("ingest", str(bad), "--strict", database_url=database_url)
    assert code == 3
    code, text = poise("ingest", "--quarantine", "--json", database_url=database_url)
    assert code == 0
    [row] = json.loads(text)
    assert (row["file_name"], row["line"], row["reason"]) == (
        "more-lots.csv",
        3,
        "quantity 'ten' is not a number",
    )


def test_ingest_when_a_file_is_refused_then_it_exits_4_and_says_why(
    database_url: str, tmp_path: Path
) -> None:
    junk = tmp_path / "holdings.csv"
    junk.write_bytes(b"\x00\x01\x02binary")
    result = runner.invoke(app, ["ingest", str(junk), "--database-url", database_url])
    assert result.exit_code == 4
    assert "binary data" in result.stderr


def test_poise_when_an_account_does_not_exist_then_the_process_exits_5(tmp_path: Path) -> None:
    env = {**os.environ, "POISE_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    subprocess.run([sys.executable, "-m", "poise", "db", "upgrade"], env=env, check=True)
    done = subprocess.run(
        [sys.executable, "-m", "poise", "accounts", "show", "NOPE"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 5
    assert "no account NOPE" in done.stderr


def test_db_commands_when_the_database_is_new_then_upgrade_brings_it_to_the_head(
    database_url: str,
) -> None:
    head = head_revision()
    assert poise("db", "current", database_url=database_url)[1].split() == [
        "database:", "none;", "poise:", head,
    ]  # fmt: skip
    code, text = poise("db", "upgrade", database_url=database_url)
    assert code == 0
    assert text.strip() == f"schema none → {head}"
    assert poise("db", "upgrade", database_url=database_url)[1].strip() == (
        f"schema {head}, up to date"
    )
    assert poise("db", "current", database_url=database_url)[1].split()[1] == f"{head};"


def test_drift_and_holds_when_the_firm_is_loaded_then_they_explain_each_account(
    database_url: str, tmp_path: Path
) -> None:
    paths = [str(p) for p in write_firm(tmp_path)]
    snapshot = tmp_path / "positions.csv"
    snapshot.write_text(  # the custodian shows 151 AAPL where the lots hold 150
        "account_id,as_of,security_id,quantity\n"
        "10000001,2022-12-28,AAPL,151\n10000001,2022-12-28,SPYA,20.125\n"
    )
    assert poise("ingest", *paths, str(snapshot), database_url=database_url)[0] == 0

    code, text = poise("holds", "--as-of", "2022-12-29", "--json", database_url=database_url)
    assert code == 0
    holds = json.loads(text)["holds"]
    assert holds == [
        {
            "account_id": "10000001",
            "cause": "lots_mismatch",
            "detail": "AAPL: lots add up to 150, the custodian shows 151",
        }
    ]

    code, text = poise(
        "drift", "--as-of", "2022-12-29", "--all", "--json", database_url=database_url
    )
    assert code == 0
    rows = {r["account_id"]: r for r in json.loads(text)["accounts"]}
    assert rows["10000001"]["held"] == "lots_mismatch"
    assert rows["10000001"]["reasons"] == []  # a held account is never requested
    # 10000002 holds only MSFT on a model of AAPL/MSFT/SPYA: far out of band.
    assert rows["10000002"]["out_of_band"]
    assert "band_breach" in rows["10000002"]["reasons"]

    # A week later every price is stale: everything is held, nothing is requested.
    code, text = poise("holds", "--as-of", "2023-01-05", "--json", database_url=database_url)
    stale = json.loads(text)
    assert set(stale["flagged"]) >= {"AAPL", "MSFT"}
    assert {h["account_id"] for h in stale["holds"]} == {"10000001", "10000002", "10000003"}


def test_requests_when_one_is_added_by_hand_then_it_is_listed_once(
    database_url: str, tmp_path: Path
) -> None:
    paths = [str(p) for p in write_firm(tmp_path)]
    assert poise("ingest", *paths, database_url=database_url)[0] == 0
    code, text = poise(
        "requests", "add", "10000002", "--note", "client called", "--json",
        database_url=database_url,
    )  # fmt: skip
    assert code == 0
    assert json.loads(text)["new"] is True
    code, text = poise("requests", "add", "10000002", "--json", database_url=database_url)
    assert json.loads(text)["new"] is False  # the same manual request, the same day
    code, text = poise("requests", "list", "--json", database_url=database_url)
    [request] = json.loads(text)["requests"]
    assert (request["account_id"], request["reasons"]) == ("10000002", ["manual"])
    assert request["figures"] == {"note": "client called"}
    assert request["household_id"] == "H1"


def test_rebalance_when_an_account_is_out_of_band_then_a_proposal_is_kept_and_replaces_the_last(
    database_url: str, tmp_path: Path
) -> None:
    paths = [str(p) for p in write_firm(tmp_path)]
    assert poise("ingest", *paths, database_url=database_url)[0] == 0
    args = ("rebalance", "--account", "10000002", "--as-of", "2022-12-29", "--json")
    code, text = poise(*args, database_url=database_url)
    assert code == 0, text
    first = json.loads(text)
    # 10000002 holds only MSFT ($7,035.90) and $150.25 cash on EQ (30 AAPL / 30 MSFT /
    # 40 SPYA): MSFT is sold down to 30%, AAPL and SPYA bought with what the sale raises.
    sides = {(t["security_id"], t["side"]) for t in first["trades"]}
    assert sides == {("MSFT", "sell"), ("AAPL", "buy"), ("SPYA", "buy")}
    assert Decimal(first["estimated_tax"]) == 0  # a Roth IRA: no tax on the gain
    assert Decimal(first["cash_after"]) >= 0
    code, text = poise(*args, database_url=database_url)
    second = json.loads(text)
    engine = make_engine(database_url)
    with engine.connect() as connection:
        kept = repo.proposals(connection, account_id="10000002")
    engine.dispose()
    assert [(p["proposal_id"], p["status"]) for p in kept] == [
        (second["proposal_id"], "pending"),
        (first["proposal_id"], "superseded"),
    ]
    assert len(kept[0]["trades"]) == len(first["trades"])


def test_rebalance_when_the_account_is_held_then_it_is_refused_with_the_cause(
    database_url: str, tmp_path: Path
) -> None:
    paths = [str(p) for p in write_firm(tmp_path)]
    assert poise("ingest", *paths, database_url=database_url)[0] == 0
    with pytest.raises(ValidationError, match="stale_price"):  # prices of 2022 seen in 2023
        poise(
            "rebalance", "--account", "10000002", "--as-of", "2023-02-01", database_url=database_url
        )
