"""Proposals and the requests they answer, as an operations person or a script finds them:
`poise proposals list` and `show`, `poise requests list`, and what `poise rebalance`
keeps — an id from the as-of date, the requests it closes, one JSON shape.

The firm is the small one of tests/firm_files.py with 100 days of prices. The monitor,
replayed over 27–28 December 2022, asks all three accounts to rebalance (as of the
evening of the 26th): 10000001 and 10000002 are out of band with cash to invest,
10000003 holds only bonds against a 60/40 model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.firm_files import price_history, write_firm
from tests.golden import assert_golden
from typer.testing import CliRunner

from poise.cli import app
from poise.domain.errors import NotFoundError

runner = CliRunner()
FIRST = "10000001/2022-12-29/bands"
ASKED = {  # the requests the replay raises
    "10000001": "10000001/2022-12-26/band_breach+cash_excess+harvest",
    "10000002": "10000002/2022-12-26/band_breach+cash_excess",
    "10000003": "10000003/2022-12-26/band_breach",
}


def poise(*args: str, database_url: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--database-url", database_url], env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def data(*args: str, database_url: str) -> Any:
    code, text = poise(*args, "--json", database_url=database_url)
    assert code == 0, text
    return json.loads(text)


def firm(database_url: str, folder: Path) -> Path:
    """The firm loaded and watched over 27–28 December: three open requests. Returns
    its prices file, to replay again."""
    paths = write_firm(folder)
    history = folder / "history.csv"
    history.write_text(price_history(100))
    data("ingest", *map(str, [*paths, history]), database_url=database_url)
    watch(database_url, history, "2022-12-27", "2022-12-28")
    return history


def watch(database_url: str, prices: Path, first: str, last: str) -> dict[str, Any]:
    report: dict[str, Any] = data(
        "monitor", "--replay", str(prices), "--from", first, "--to", last,
        database_url=database_url,
    )  # fmt: skip
    return report


def rebalance(database_url: str, account: str, *args: str, as_of: str = "2022-12-29") -> Any:
    return data(
        "rebalance", "--account", account, "--as-of", as_of, *args, database_url=database_url
    )


def requests(database_url: str, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = data("requests", "list", *args, database_url=database_url)
    return found


def test_rebalance_when_run_again_on_one_day_then_ids_are_the_as_of_date_and_each_run_is_kept(
    database_url: str, tmp_path: Path
) -> None:
    firm(database_url, tmp_path)
    first = rebalance(database_url, "10000001")
    second = rebalance(database_url, "10000001")
    kept = rebalance(database_url, "10000001", "--scenario", "no-gains")
    assert (first["proposal_id"], second["proposal_id"]) == (FIRST, f"{FIRST}.2")
    assert kept["proposal_id"] == "10000001/2022-12-29/optimize/no-gains"
    # Nothing is lost: the first run is kept, superseded by the second, and says so.
    shown = data("proposals", "show", FIRST, database_url=database_url)
    assert (shown["status"], shown["superseded_by"]) == ("superseded", f"{FIRST}.2")
    assert shown["trades"] == first["trades"]
    listed = data("proposals", "list", "--account", "10000001", database_url=database_url)
    assert [p["proposal_id"] for p in listed["proposals"]] == [
        kept["proposal_id"],  # the latest made first, among proposals of one as-of date
        f"{FIRST}.2",
        FIRST,
    ]


def test_rebalance_when_requests_are_open_then_the_proposal_answers_them_and_a_new_day_asks_again(
    database_url: str, tmp_path: Path
) -> None:
    prices = firm(database_url, tmp_path)
    code, _ = poise("requests", "add", "10000001", "--note", "called", database_url=database_url)
    assert code == 0  # as of now: after anything a proposal as of 2022 saw
    manual = requests(database_url, "--reason", "manual")["requests"][0]["request_id"]
    assert requests(database_url, "--status", "open")["total"] == 4

    first = rebalance(database_url, "10000001")
    assert [r["request_id"] for r in first["requests"]] == [ASKED["10000001"]]
    by_id = {r["request_id"]: r for r in requests(database_url)["requests"]}
    assert (by_id[ASKED["10000001"]]["status"], by_id[ASKED["10000001"]]["answered_by"]) == (
        "answered",
        FIRST,
    )
    assert by_id[manual]["status"] == "open"  # raised after the proposal's as-of
    assert by_id[ASKED["10000002"]]["status"] == "open"  # another account's

    # A second run supersedes the first: the request is the new proposal's to answer.
    second = rebalance(database_url, "10000001")
    assert [r["request_id"] for r in second["requests"]] == [ASKED["10000001"]]
    assert data("proposals", "show", FIRST, database_url=database_url)["requests"] == []
    answered = requests(database_url, "--status", "answered")["requests"]
    assert [(r["request_id"], r["answered_by"]) for r in answered] == [
        (ASKED["10000001"], f"{FIRST}.2")
    ]

    # The account is still out of band when the monitor looks again on the 30th: with
    # its request answered, a new one is raised; the others' are open and not repeated.
    report = watch(database_url, prices, "2022-12-30", "2022-12-30")
    assert report["stored"] == 1
    raised = requests(database_url, "--from", "2022-12-29", "--to", "2022-12-29")["requests"]
    assert [(r["request_id"], r["status"]) for r in raised] == [
        ("10000001/2022-12-29/band_breach+cash_excess+harvest", "open")
    ]


def test_proposals_list_when_filtered_then_it_finds_them_and_gives_the_true_total(
    database_url: str, tmp_path: Path
) -> None:
    firm(database_url, tmp_path)
    rebalance(database_url, "10000001")
    rebalance(database_url, "10000001")
    rebalance(database_url, "10000002", "--method", "cash", as_of="2022-12-28")
    rebalance(database_url, "10000003", as_of="2022-12-28")

    def ids(*args: str) -> list[str]:
        found = data("proposals", "list", *args, database_url=database_url)
        assert found["total"] == len(found["proposals"])
        return [p["proposal_id"] for p in found["proposals"]]

    assert ids() == [f"{FIRST}.2", FIRST, "10000003/2022-12-28/bands", "10000002/2022-12-28/cash"]
    assert ids("--household", "H1", "--status", "pending") == [
        f"{FIRST}.2",
        "10000002/2022-12-28/cash",
    ]
    assert ids("--status", "superseded") == [FIRST]
    assert ids("--method", "cash") == ["10000002/2022-12-28/cash"]
    assert ids("--from", "2022-12-28", "--to", "2022-12-28") == [
        "10000003/2022-12-28/bands",
        "10000002/2022-12-28/cash",
    ]
    assert ids("--from", "2022-12-30") == []

    limited = data("proposals", "list", "--limit", "1", database_url=database_url)
    assert (limited["total"], len(limited["proposals"])) == (4, 1)
    code, text = poise("proposals", "list", "--limit", "2", database_url=database_url)
    assert code == 0
    assert "proposals (2 of 4)" in text
    assert f"{FIRST}.2" in text


def test_proposals_show_when_a_sale_relieves_lots_then_trades_lots_and_requests_are_shown(
    database_url: str, tmp_path: Path
) -> None:
    """10000001 holds 150 AAPL, all at a loss (L1 long-term, L2 short-term), far above
    its 18%: the sale relieves the loss lots, short-term first, and the cash there is
    buys only part of what is under target."""
    firm(database_url, tmp_path)
    rebalance(database_url, "10000001")
    shown = data("proposals", "show", FIRST, database_url=database_url)
    assert (shown["account_id"], shown["household_id"], shown["method"]) == (
        "10000001",
        "H1",
        "bands",
    )
    [sale] = [t for t in shown["trades"] if t["side"] == "sell"]
    assert sale["security_id"] == "AAPL"
    assert [(lot["lot_id"], lot["term"]) for lot in sale["lots"]] == [
        ("L2", "short"),
        ("L1", "long"),
    ]
    assert all(float(lot["gain"]) < 0 for lot in sale["lots"])
    assert sum(float(lot["quantity"]) for lot in sale["lots"]) == float(sale["quantity"])
    assert shown["binding"]
    assert [r["request_id"] for r in shown["requests"]] == [ASKED["10000001"]]

    code, text = poise("proposals", "show", FIRST, database_url=database_url)
    assert code == 0
    flat = " ".join(text.split())
    assert f"{FIRST} pending" in flat
    assert "L2 50 (-2,448.50 short)" in flat
    assert "held back:" in flat
    assert ASKED["10000001"] in flat
    with pytest.raises(NotFoundError, match="no proposal '10000001/2022-12-30/bands'"):
        poise("proposals", "show", "10000001/2022-12-30/bands", database_url=database_url)


def test_rebalance_json_when_a_proposal_is_kept_then_it_is_what_proposals_show_prints(
    database_url: str, tmp_path: Path
) -> None:
    firm(database_url, tmp_path)
    kept = rebalance(database_url, "10000001")
    shown = data("proposals", "show", kept["proposal_id"], database_url=database_url)
    assert kept.pop("risk_model_default") is False
    assert kept == shown
    for ratio in ("drift_before", "drift_after", "tracking_before", "tracking_after"):
        assert isinstance(kept[ratio], float)
        assert kept[ratio] == round(kept[ratio], 6)
    for money in ("cash_before", "cash_after", "estimated_tax", "cost", "turnover"):
        assert isinstance(kept[money], str)
    # Side by side, each scenario's proposal has the same shape; the kept one is whole.
    compared = rebalance(database_url, "10000002", "--scenario", "cash", "--scenario", "bands")
    first, other = (s["proposal"] for s in compared["scenarios"])
    assert first == data("proposals", "show", compared["proposal_id"], database_url=database_url)
    assert set(other) == set(first)
    assert (other["proposal_id"], other["status"]) == (None, None)
    assert other["drift_after"] == round(other["drift_after"], 6)
    assert compared["scenarios"][1]["figures"]["trades"] == len(other["trades"])


def test_requests_list_when_filtered_then_the_title_and_json_give_the_true_total(
    database_url: str, tmp_path: Path
) -> None:
    firm(database_url, tmp_path)
    rebalance(database_url, "10000001")

    def ids(*args: str) -> list[str]:
        found = requests(database_url, *args)
        assert found["total"] == len(found["requests"])
        return sorted(r["request_id"] for r in found["requests"])

    assert ids() == sorted(ASKED.values())
    assert ids("--account", "10000002") == [ASKED["10000002"]]
    assert ids("--household", "H2") == [ASKED["10000003"]]
    assert ids("--status", "open") == [ASKED["10000002"], ASKED["10000003"]]
    assert ids("--reason", "harvest") == [ASKED["10000001"]]
    assert ids("--reason", "cash_excess", "--status", "open") == [ASKED["10000002"]]
    assert ids("--from", "2022-12-26", "--to", "2022-12-26") == sorted(ASKED.values())
    assert ids("--to", "2022-12-25") == []

    limited = requests(database_url, "--limit", "1")
    assert (limited["total"], len(limited["requests"])) == (3, 1)
    code, text = poise("requests", "list", "--limit", "1", database_url=database_url)
    assert code == 0
    assert "rebalance requests (1 of 3)" in text
    # The figures keep the JSON convention: money exact strings, ratios to six places.
    figures = requests(database_url, "--account", "10000001")["requests"][0]["figures"]
    assert figures["value"] == "29245.91"
    assert isinstance(figures["max_drift"], float)
    assert all(isinstance(h["loss"], str) for h in figures["harvest"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("proposals", "list", "--status", "waiting"), "proposed, blocked, pending"),
        (("proposals", "list", "--method", "magic"), "bands, cash, optimize"),
        (("proposals", "list", "--from", "29/12/2022"), "is not a date"),
        (("requests", "list", "--status", "closed"), "open, answered"),
        (("requests", "list", "--reason", "drift"), "band_breach, cash_short"),
    ],
)
def test_list_when_a_filter_is_not_known_then_it_exits_2_and_names_the_choices(
    database_url: str, args: tuple[str, ...], message: str
) -> None:
    result = runner.invoke(app, [*args, "--database-url", database_url], terminal_width=200)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


# ── golden files ─────────────────────────────────────────────────────────────
#
# The JSON of `proposals list`, `proposals show` and `requests list` on the firm above
# after three rebalances, kept in tests/cli/golden/. The same file must come out of
# SQLite and PostgreSQL. When a change of shape is meant, refresh them with
#     POISE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/cli/test_proposals.py -k golden
# and read the diff before committing it.

GOLDEN_COMMANDS = {
    "proposals_list": ("proposals", "list"),
    "proposals_show": ("proposals", "show", f"{FIRST}.2"),
    "requests_list": ("requests", "list"),
}
MADE = "<created_at>"  # the wall-clock time a proposal was made, the one thing that moves


def steady(value: Any) -> Any:
    """``value`` with every ``created_at`` replaced by :data:`MADE`."""
    if isinstance(value, dict):
        return {k: MADE if k == "created_at" else steady(v) for k, v in value.items()}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


@pytest.fixture
def golden_firm(database_url: str, tmp_path: Path) -> str:
    firm(database_url, tmp_path)
    rebalance(database_url, "10000001")
    rebalance(database_url, "10000001")
    rebalance(database_url, "10000002", "--method", "cash", as_of="2022-12-28")
    return database_url


@pytest.mark.parametrize("name", list(GOLDEN_COMMANDS))
def test_golden_when_the_json_is_printed_then_it_is_the_file_kept(
    golden_firm: str, name: str
) -> None:
    assert_golden(name, steady(data(*GOLDEN_COMMANDS[name], database_url=golden_firm)))
