"""poise rebalance, as an operations person or a script uses it: the optimize method and
its settings, scenarios side by side, the risk model said, and the wash-sale window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.firm_files import ACCOUNTS, price_history, write_firm
from typer.testing import CliRunner

from poise.cli import app
from poise.domain.errors import AuthError, ValidationError
from poise.domain.relief import Term
from poise.monitor.book import BandPolicy
from poise.optimize.check import Costs, violations
from poise.optimize.scenarios import PRESETS
from poise.optimize.trades import LotSale, Side, Trade, TradeReason
from poise.store import repo
from poise.store.engine import make_engine
from poise.workflow.rebalance import load_problem

D = Decimal
runner = CliRunner()
AS_OF = "2022-12-29"
REBALANCE = ("rebalance", "--account", "10000001", "--as-of", AS_OF)


def poise(*args: str, database_url: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--database-url", database_url], terminal_width=120)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def load(database_url: str, folder: Path, **extra: str) -> None:
    """The small firm of tests/firm_files.py, and ``extra`` files (name → text)."""
    paths = write_firm(folder)
    for name, text in extra.items():
        (folder / name).write_text(text)
        paths.append(folder / name)
    code, text = poise("ingest", *map(str, paths), "--json", database_url=database_url)
    assert code == 0, text
    assert all(f["quarantined"] == 0 for f in json.loads(text)), text


def kept(database_url: str, account_id: str = "10000001") -> list[dict[str, Any]]:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        found = repo.proposals(connection, account_id=account_id)
    engine.dispose()
    return found


def stored_trades(proposal: dict[str, Any]) -> list[Trade]:
    """A kept proposal's trades, read back from the store as domain objects."""
    return [
        Trade(
            t["security_id"],
            Side(t["side"]),
            t["quantity"],
            t["price"],
            TradeReason(t["reason"]),
            tuple(
                LotSale(
                    s["lot_id"], D(s["quantity"]), D(s["basis"]), D(s["proceeds"]), Term(s["term"])
                )
                for s in t["lots"]
            ),
        )
        for t in proposal["trades"]
    ]


def check_rules(database_url: str, proposal: dict[str, Any]) -> list[str]:
    engine = make_engine(database_url)
    problem = load_problem(
        engine,
        account_id=proposal["account_id"],
        as_of=proposal["as_of"],
        firm_band=BandPolicy.preset("5/25").band(),
        max_price_age=timedelta(days=4),
    )
    engine.dispose()
    return violations(problem, stored_trades(proposal), Costs())


def test_rebalance_when_the_method_is_optimize_then_the_kept_proposal_keeps_every_rule(
    database_url: str, tmp_path: Path
) -> None:
    """
    10000001 (taxable, CORE 18 AAPL / 18 MSFT / 24 SPYA / 38 BOND / 2 cash) holds 150
    AAPL, all at a loss, and 20.125 SPYA: the optimum harvests AAPL and buys MSFT and
    BOND. 100 days of prices give the risk model something to estimate.
    """
    load(database_url, tmp_path, **{"history.csv": price_history(100)})
    code, text = poise(*REBALANCE, "--method", "optimize", "--json", database_url=database_url)
    assert code == 0, text
    shown = json.loads(text)
    assert shown["method"] == "optimize"
    assert (
        shown["risk_model"] == "risk model: 99 days of prices in common, 2022-08-11 to 2022-12-28"
    )
    assert shown["risk_model_default"] is False
    assert D(shown["tracking_after"]) < D(shown["tracking_before"])
    bought = {t["security_id"] for t in shown["trades"] if t["side"] == "buy"}
    assert {"MSFT", "BOND"} <= bought

    [proposal] = kept(database_url)
    assert proposal["proposal_id"] == shown["proposal_id"]
    assert (proposal["method"], proposal["scenario"]) == ("optimize", None)
    assert shown["tracking_after"] == round(float(proposal["tracking_after"]), 6)  # a ratio
    assert proposal["trades"]
    assert check_rules(database_url, proposal) == []

    code, text = poise(*REBALANCE, "--method", "optimize", database_url=database_url)
    assert code == 0
    before, after = (f"{D(shown[k]) * 100:.1f}%" for k in ("tracking_before", "tracking_after"))
    assert f"tracking error {before} → {after}" in " ".join(text.split())
    assert "risk model: 99 days of prices in common" in text


def test_rebalance_when_prices_are_too_few_for_a_risk_model_then_the_output_says_so(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path)  # one day of prices
    code, text = poise(*REBALANCE, database_url=database_url)
    assert code == 0, text
    assert "risk model: default volatility (20%, no correlation)" in text
    assert "too little price history" in text
    code, text = poise(*REBALANCE, "--method", "cash", "--json", database_url=database_url)
    shown = json.loads(text)
    assert shown["risk_model_default"] is True
    assert shown["tracking_before"] is not None  # measured all the same, and said to be rough
    assert kept(database_url)[0]["risk_model"].startswith("risk model: default volatility")


def test_rebalance_when_optimize_settings_are_given_then_the_proposal_keeps_them(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path, **{"history.csv": price_history(100)})
    value = D("29077.65")  # 150 AAPL, 20.125 SPYA and 2,500.00 cash
    code, text = poise(
        *REBALANCE, "--method", "optimize", "--max-turnover", "0.1", "--min-trade", "1000",
        "--json", database_url=database_url,
    )  # fmt: skip
    assert code == 0, text
    shown = json.loads(text)
    assert shown["trades"]
    assert sum(D(t["quantity"]) * D(t["price"]) for t in shown["trades"]) <= value / 10
    assert all(D(t["quantity"]) * D(t["price"]) >= 1000 for t in shown["trades"])

    code, text = poise(*REBALANCE, "--method", "bands", "--min-trade-pct", "10", "--json",
                       database_url=database_url)  # fmt: skip
    assert all(D(t["quantity"]) * D(t["price"]) >= value / 10 for t in json.loads(text)["trades"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--method", "optimize", "--tax-weight", "-1"), "the tax weight must not be negative"),
        (("--method", "optimize", "--tax-budget", "-100"), "the tax budget must not be negative"),
        (("--method", "optimize", "--max-turnover", "-0.1"), "maximum turnover must not be"),
        (("--min-trade", "-5"), "the minimum trade must not be negative"),
        (("--method", "bands", "--risk-weight", "2"), "--risk-weight: only the optimize method"),
        (("--method", "bands", "--scenario", "full"), "give --method or --scenario, not both"),
        (("--method", "magic"), "no method 'magic'; methods: bands, cash, optimize"),
    ],
)
def test_rebalance_when_a_setting_is_wrong_then_it_is_refused_and_says_why(
    database_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    load(database_url, tmp_path)
    with pytest.raises(ValidationError, match=message):
        poise(*REBALANCE, *args, database_url=database_url)
    assert kept(database_url) == []


def test_rebalance_when_every_scenario_is_asked_for_then_a_table_shows_each_and_one_is_kept(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path, **{"history.csv": price_history(100)})
    code, text = poise(*REBALANCE, "--scenario", "all", database_url=database_url)
    assert code == 0, text
    table = text[text.index("scenarios: what each costs") : text.index("tax against tracking")]
    rows = [line.split("│")[1].strip() for line in table.splitlines() if line.startswith("│")]
    assert rows == list(PRESETS)  # full, no-gains, harvest, cash, bands
    assert "tax against tracking error" in text
    assert "kept:" in text
    assert "(scenario full, optimize, status pending)" in " ".join(text.split())
    [proposal] = kept(database_url)
    assert (proposal["method"], proposal["scenario"], proposal["status"]) == (
        "optimize",
        "full",
        "pending",
    )
    assert check_rules(database_url, proposal) == []


def test_rebalance_when_scenarios_are_asked_for_json_then_each_has_figures_and_the_first_is_kept(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path, **{"history.csv": price_history(100)})
    code, text = poise(
        *REBALANCE, "--scenario", "bands", "--scenario", "no-gains", "--scenario", "bands",
        "--json", database_url=database_url,
    )  # fmt: skip
    assert code == 0, text
    shown = json.loads(text)
    assert [s["name"] for s in shown["scenarios"]] == ["bands", "no-gains"]  # each once
    assert shown["kept"] == "bands"
    assert shown["risk_model_default"] is False
    bands, no_gains = shown["scenarios"]
    assert no_gains["settings"]["tax_budget"] == "0"
    figures = no_gains["figures"]
    assert figures["trades"] == len(no_gains["proposal"]["trades"])
    assert D(figures["estimated_tax"]) == D(no_gains["proposal"]["estimated_tax"])
    assert set(figures) >= {"turnover", "cost", "tracking_after", "drift_after"}
    assert D(no_gains["proposal"]["realised_short"]) + D(no_gains["proposal"]["realised_long"]) <= 0
    [proposal] = kept(database_url)
    assert proposal["proposal_id"] == shown["proposal_id"]
    assert (proposal["method"], proposal["scenario"]) == ("bands", "bands")
    assert len(proposal["trades"]) == len(bands["proposal"]["trades"])


def test_rebalance_when_a_scenario_is_unknown_then_the_process_exits_3_and_names_them(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "POISE_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "poise", *REBALANCE, "--scenario", "full", "--scenario", "nope"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3
    assert "no scenario 'nope'; scenarios: full, no-gains, harvest, cash, bands (or all)" in (
        " ".join(done.stderr.split())
    )


def wash_sale_files(days_ago: int) -> dict[str, str]:
    """10000001 bought 10 MSFT at $200 (lot L6) and sold 5 of them ``days_ago`` for $950:
    a loss of $50. The 5 left (worth $1,172.65) are far below MSFT's 18%."""
    traded = date.fromisoformat(AS_OF) - timedelta(days=days_ago)
    return {
        "more-lots.csv": "account_id,lot_id,security_id,quantity,cost_basis,acquired\n"
        "10000001,L6,MSFT,5,1000.00,2020-03-02\n",
        "transactions.csv": "account_id,txn_id,kind,trade_date,settle_date,security_id,"
        "quantity,amount,lots,description\n"
        f"10000001,T1,sell,{traded},{traded + timedelta(days=2)},MSFT,5,950.00,L6:5,Rebalance\n",
    }


@pytest.mark.parametrize("method", ["bands", "optimize"])
@pytest.mark.parametrize(("days_ago", "bought"), [(10, False), (40, True)])
def test_rebalance_when_a_security_was_sold_at_a_loss_then_it_is_bought_back_only_after_30_days(
    database_url: str, tmp_path: Path, method: str, days_ago: int, bought: bool
) -> None:
    load(database_url, tmp_path, **{"history.csv": price_history(100), **wash_sale_files(days_ago)})
    code, text = poise(*REBALANCE, "--method", method, "--json", database_url=database_url)
    assert code == 0, text
    buys = {t["security_id"] for t in json.loads(text)["trades"] if t["side"] == "buy"}
    assert ("MSFT" in buys) is bought
    assert "BOND" in buys  # the rest of the account is rebalanced all the same


def test_rebalance_when_the_account_sets_its_own_minimum_trade_then_it_stands_unless_the_run_says(
    database_url: str, tmp_path: Path
) -> None:
    # The firm's smallest trade is $100; account 10000001's own file row says $1,500 —
    # a custodian that charges a ticket fee, say. A run's --min-trade overrides both.
    accounts = tmp_path / "own" / "accounts.csv"
    accounts.parent.mkdir()
    header, first, *rest = ACCOUNTS.splitlines()
    accounts.write_text("\n".join([f"{header},min_trade", f"{first},1500", *rest]) + "\n")
    load(database_url, tmp_path, **{"history.csv": price_history(100)})
    code, text = poise("ingest", str(accounts), "--json", database_url=database_url)
    assert code == 0, text
    code, text = poise("accounts", "show", "10000001", "--json", database_url=database_url)
    assert json.loads(text)["account"]["min_trade"] == {"amount": "1500", "fraction": None}
    code, text = poise("accounts", "show", "10000001", database_url=database_url)
    assert "smallest trade (the account's own): 1,500.00" in text

    def trades(*args: str) -> list[D]:
        code, text = poise(*REBALANCE, "--method", "optimize", *args, "--json",
                           database_url=database_url)  # fmt: skip
        assert code == 0, text
        return [D(t["quantity"]) * D(t["price"]) for t in json.loads(text)["trades"]]

    own = trades()
    assert own
    assert min(own) >= 1500
    assert min(trades("--min-trade", "0")) < 1500  # the run's word is the last


def test_rebalance_when_run_as_a_user_then_they_prepared_it_and_an_unknown_one_is_refused(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path)
    code, text = poise("users", "add", "ana", "--role", "adviser", "--no-password",
                       database_url=database_url)  # fmt: skip
    assert code == 0, text
    with pytest.raises(AuthError, match="no user nobody") as refused:
        poise(*REBALANCE, "--as", "nobody", database_url=database_url)
    assert refused.value.exit_code == 9
    assert kept(database_url) == []
    code, text = poise(*REBALANCE, "--as", "ana", database_url=database_url)
    assert code == 0, text
    engine = make_engine(database_url)
    with engine.connect() as connection:
        ana = repo.user_named(connection, username="ana")
    engine.dispose()
    assert kept(database_url)[0]["prepared_by"] == ana.user_id
