"""A wrong price in the feed, end to end, on SQLite and PostgreSQL.

The small firm of ``tests/firm_files.py`` in a store, with a year of daily closes up
to 28 December 2022 — AAPL moving 3% a day, every other security 1% — and then the
prices of 29 December:

    10000001  CORE (AAPL, MSFT, SPYA, BOND, cash)  holds AAPL, SPYA
    10000002  EQ   (AAPL, MSFT, SPYA)              holds MSFT
    10000003  CORE                                 holds BOND

Every account holds AAPL or MSFT or is on a model that buys them. (The feed's AAPL at
1e20 comes as 1e17 here: a prices file takes at most 18 digits before the point.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.firm_files import price_history, write_firm
from typer.testing import CliRunner

from poise.cli import app
from poise.domain.errors import ValidationError

runner = CliRunner()
ACCOUNTS = {"10000001", "10000002", "10000003"}
VOLATILITY = {"AAPL": 0.03}  # a day; the others 1%


def poise(*args: str, database_url: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--database-url", database_url])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


def load(database_url: str, folder: Path) -> None:
    paths = write_firm(folder)
    (folder / "history.csv").write_text(price_history(260, seed=7, volatility=VOLATILITY))
    code, text = poise("ingest", *map(str, paths), str(folder / "history.csv"), "--strict",
                       database_url=database_url)  # fmt: skip
    assert code == 0, text


def prices(database_url: str, folder: Path, name: str, rows: dict[str, str]) -> None:
    """Ingest the prices of 29 December: security → price."""
    path = folder / name
    lines = [f"{s},2022-12-29,{p},close" for s, p in rows.items()]
    path.write_text("security_id,as_of,price,source\n" + "\n".join(lines) + "\n")
    code, text = poise("ingest", str(path), "--strict", database_url=database_url)
    assert code == 0, text


def holds(database_url: str) -> dict[str, object]:
    code, text = poise("holds", "--as-of", "2022-12-29", "--json", database_url=database_url)
    assert code == 0
    found: dict[str, object] = json.loads(text)
    return found


def test_feed_when_aapl_comes_at_1e17_and_msft_at_1e_8_then_every_toucher_is_held_until_fixed(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path)
    prices(database_url, tmp_path, "bad.csv",
           {"AAPL": "100000000000000000", "MSFT": "0.00000001"})  # fmt: skip

    found = holds(database_url)
    flagged = found["flagged"]
    assert isinstance(flagged, dict)
    assert set(flagged) == {"AAPL", "MSFT"}
    assert flagged["AAPL"] == (
        "price 100000000000000000 on 2022-12-29 is above the ceiling of 10000000,"
        " and 7.934e+14 times the previous 126.04 of 2022-12-28"
    )
    assert flagged["MSFT"].startswith(
        "price 0.00000001 on 2022-12-29 is 1/2.345e+10 of the previous 234.53 of 2022-12-28:"
        " a move of "
    )
    assert flagged["MSFT"].endswith("; more than 10 times is implausible")
    listed = found["holds"]
    assert isinstance(listed, list)
    assert {(h["account_id"], h["cause"]) for h in listed} == {
        (a, "implausible_price") for a in ACCOUNTS
    }
    assert {h["detail"] for h in listed if h["account_id"] == "10000003"} == {
        f"AAPL: {flagged['AAPL']}",
        f"MSFT: {flagged['MSFT']}",
    }

    code, text = poise("drift", "--as-of", "2022-12-29", "--all", "--json",
                       database_url=database_url)  # fmt: skip
    assert code == 0
    rows = {r["account_id"]: r for r in json.loads(text)["accounts"]}
    assert {a: r["held"] for a, r in rows.items()} == dict.fromkeys(ACCOUNTS, "implausible_price")
    assert all(r["reasons"] == [] for r in rows.values())  # held: never requested
    assert rows["10000002"]["hold"] == f"AAPL: {flagged['AAPL']}"  # the first of its two

    for account in sorted(ACCOUNTS):
        refused = rf"account {account} is held, not rebalanced: implausible_price: AAPL: price "
        with pytest.raises(ValidationError, match=refused + "100000000000000000 on 2022-12-29"):
            poise(
                "rebalance", "--account", account, "--as-of", "2022-12-29",
                database_url=database_url,
            )  # fmt: skip

    # The right prices, for the same securities, time and source, replace the wrong ones:
    # nothing is held, and the account is rebalanced.
    prices(database_url, tmp_path, "fixed.csv", {"AAPL": "127.35", "MSFT": "231.90"})
    assert holds(database_url) == {"as_of": found["as_of"], "holds": [], "flagged": {}}
    code, text = poise("rebalance", "--account", "10000002", "--as-of", "2022-12-29", "--json",
                       database_url=database_url)  # fmt: skip
    assert code == 0, text
    assert json.loads(text)["trades"]


def test_feed_when_prices_move_as_they_can_then_nothing_is_held_and_a_1_percent_stock_jump_is(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url, tmp_path)
    # An ordinary day: SPYA −1.2%, BOND +0.3%. AAPL moves 3% a day: +25% is a big day
    # (about 7 of its daily volatilities), not a wrong price.
    prices(database_url, tmp_path, "ordinary.csv",
           {"SPYA": "376.60", "BOND": "9.45", "AAPL": "157.55"})  # fmt: skip
    assert holds(database_url)["holds"] == []
    # MSFT moves 1% a day: the same +25% is some 20 of its volatilities. Implausible.
    prices(database_url, tmp_path, "msft.csv", {"MSFT": "293.16"})
    found = holds(database_url)
    assert list(found["flagged"]) == ["MSFT"]  # type: ignore[call-overload]
    assert {h["account_id"] for h in found["holds"]} == ACCOUNTS  # type: ignore[attr-defined]
