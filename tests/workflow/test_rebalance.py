"""The rebalancer's shell on SQLite and PostgreSQL: the price history behind the risk
model, recent sales and the wash-sale rule, and the proposal that is kept."""

from __future__ import annotations

import decimal
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from tests.firm_files import price_history, write_firm

from poise.domain.errors import ValidationError
from poise.domain.lots import TaxLot
from poise.domain.transactions import LotRelieved, Transaction, TxnKind
from poise.monitor.book import BandPolicy
from poise.monitor.plausible import PriceCheck
from poise.optimize.check import Costs, violations
from poise.optimize.problem import Problem, RecentTrade
from poise.optimize.scenarios import Scenario, choose
from poise.store import repo
from poise.store import tables as t
from poise.workflow.households import recent_trades
from poise.workflow.ingest import ingest_paths
from poise.workflow.rebalance import load_history, load_problem, propose

D = Decimal
TODAY = date(2022, 12, 30)
AS_OF = datetime(2022, 12, 29, 23, 59, 59, tzinfo=UTC)
TWO_YEARS = timedelta(days=730)


def load_firm(engine: sa.Engine, folder: Path, **extra: str) -> None:
    """The small firm, and ``extra`` files (name → text) beside it."""
    paths = write_firm(folder)
    for name, text in extra.items():
        (folder / name).write_text(text)
        paths.append(folder / name)
    reports = ingest_paths(engine, paths, today=TODAY)
    assert all(r.quarantined == 0 and not r.refused for r in reports), reports


def problem_of(engine: sa.Engine, account_id: str) -> Problem:
    return load_problem(
        engine,
        account_id=account_id,
        as_of=AS_OF,
        firm_band=BandPolicy.preset("5/25").band(),
        max_price_age=timedelta(days=4),
    )


def test_price_history_when_a_day_has_several_prices_then_its_last_is_taken_and_gaps_are_nan(
    engine: sa.Engine,
) -> None:
    """
    X: 1 at 10:00 and 2 at 21:00 on 1 Dec, 3 on 2 Dec; Y: 5 on 2 Dec only.
    A price before the lookback and one after as-of are not read.
    """

    def at(day: int, hour: int = 21) -> datetime:
        return datetime(2022, 12, day, hour, tzinfo=UTC)

    rows = [("X", at(1, 10), "1"), ("X", at(1), "2"), ("X", at(2), "3"), ("Y", at(2), "5")]
    rows += [("X", datetime(2022, 10, 3, tzinfo=UTC), "0.5"), ("Y", at(5), "9")]
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.prices),
            [{"security_id": s, "as_of": a, "source": "close", "price": D(p)} for s, a, p in rows],
        )
        history = repo.price_history(
            connection, security_ids=["Y", "X"], since=at(1, 0) - timedelta(days=30), until=at(3)
        )
    assert history.security_ids == ("Y", "X")  # aligned as asked, not alphabetically
    assert history.days == (date(2022, 12, 1), date(2022, 12, 2))
    np.testing.assert_array_equal(history.prices, [[np.nan, 2.0], [5.0, 3.0]])
    assert history.falls_back
    assert history.describe().endswith(
        "too little price history (0 days in common, 60 needed; shortest: Y, 1 day)"
    )


def test_propose_when_optimize_has_a_year_of_prices_then_the_kept_proposal_keeps_every_rule(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """
    10000001 (taxable, CORE) holds AAPL at a loss, far above its 18%, and no MSFT or
    BOND: the optimum sells AAPL (a harvest) and buys what is missing.
    """
    load_firm(engine, tmp_path, **{"history.csv": price_history(260)})
    problem = problem_of(engine, "10000001")
    history = load_history(engine, problem=problem, as_of=AS_OF, lookback=TWO_YEARS)
    assert history.security_ids == tuple(h.security_id for h in problem.holdings)
    assert not history.falls_back
    assert history.describe() == (
        "risk model: 259 days of prices in common, 2021-12-30 to 2022-12-28"
    )

    proposed = propose(
        engine,
        problem=problem,
        scenarios=[Scenario.of_method("optimize")],
        history=history,
        as_of=AS_OF,
    )
    _, proposal = proposed.kept
    assert proposal.trades
    assert violations(problem, proposal.trades, Costs()) == []
    assert proposal.tracking_before is not None
    assert proposal.tracking_after is not None
    assert proposal.tracking_after < proposal.tracking_before
    with engine.connect() as connection:
        [kept] = repo.proposals(connection, account_id="10000001")
    assert kept["proposal_id"] == proposed.proposal_id
    assert (kept["method"], kept["scenario"], kept["status"]) == ("optimize", None, "proposed")
    assert (kept["tracking_before"], kept["tracking_after"]) == (
        proposal.tracking_before,
        proposal.tracking_after,
    )
    assert kept["risk_model"] == history.describe()
    assert len(kept["trades"]) == len(proposal.trades)


def test_propose_when_scenarios_are_compared_then_each_is_run_and_only_the_first_is_kept(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path, **{"history.csv": price_history(100)})
    problem = problem_of(engine, "10000001")
    history = load_history(engine, problem=problem, as_of=AS_OF, lookback=TWO_YEARS)
    proposed = propose(
        engine,
        problem=problem,
        scenarios=choose(["no-gains", "bands", "cash"]),
        history=history,
        as_of=AS_OF,
    )
    assert [(s.name, p.method) for s, p in proposed.results] == [
        ("no-gains", "optimize"),
        ("bands", "bands"),
        ("cash", "cash"),
    ]
    for _, proposal in proposed.results:
        assert violations(problem, proposal.trades, Costs()) == []
        assert proposal.tracking_after is not None  # every method is measured alike
    _, no_gains = proposed.kept
    assert no_gains.realised_short + no_gains.realised_long <= 0
    with engine.connect() as connection:
        kept = repo.proposals(connection, account_id="10000001")
    assert [(p["proposal_id"], p["scenario"]) for p in kept] == [(proposed.proposal_id, "no-gains")]


LOT = TaxLot("L6", "10000001", "MSFT", D(5), D("1000.00"), date(2020, 3, 2))  # $200 a share


def sale(amount: str, lots: tuple[LotRelieved, ...] = (LotRelieved("L6", D(5)),)) -> Transaction:
    day = date(2022, 12, 19)
    return Transaction(
        "T1", "10000001", TxnKind.SELL, day, day + timedelta(days=2), D(amount), "MSFT", D(5), lots
    )


@pytest.mark.parametrize(
    ("the_sale", "loss"),
    [
        pytest.param(sale("950.00"), True, id="proceeds below the lot's basis: a loss"),
        pytest.param(sale("1100.00"), False, id="proceeds above it: a gain"),
        pytest.param(sale("1100.00", ()), True, id="no lots named: unknown, counted a loss"),
        pytest.param(
            sale("1100.00", (LotRelieved("L99", D(5)),)), True, id="a lot not in the books"
        ),
    ],
)
def test_recent_sales_when_the_basis_is_known_then_the_loss_is_too_and_otherwise_assumed(
    the_sale: Transaction, loss: bool
) -> None:
    assert recent_trades([], [the_sale], [LOT]) == [
        RecentTrade(
            "MSFT", date(2022, 12, 19), bought=False, loss=loss, account_id=the_sale.account_id
        )
    ]


@pytest.mark.parametrize(
    ("days_ago", "amount", "no_buy"),
    [
        (10, "950.00", "sold at a loss in the last 30 days"),
        (10, "1100.00", ""),  # sold at a gain: no wash sale to fear
        (40, "950.00", ""),  # outside the 30 days
    ],
)
def test_load_problem_when_a_security_was_sold_recently_then_only_a_loss_inside_30_days_bars_it(
    engine: sa.Engine, tmp_path: Path, days_ago: int, amount: str, no_buy: str
) -> None:
    """
    10000001 sold 5 of its 10 MSFT bought at $200 (lot L6); 5 are left.
    """
    traded = AS_OF.date() - timedelta(days=days_ago)
    load_firm(
        engine,
        tmp_path,
        **{
            "more-lots.csv": "account_id,lot_id,security_id,quantity,cost_basis,acquired\n"
            "10000001,L6,MSFT,5,1000.00,2020-03-02\n",
            "transactions.csv": "account_id,txn_id,kind,trade_date,settle_date,security_id,"
            "quantity,amount,lots\n"
            f"10000001,T1,sell,{traded},{traded + timedelta(days=2)},MSFT,5,{amount},L6:5\n",
        },
    )
    assert problem_of(engine, "10000001").holding("MSFT").no_buy == no_buy


# An absurd feed on 29 December: AAPL at 1e17 (a prices file takes at most 18 digits
# before the point) and MSFT at 1e-8, after a year of ordinary prices.
ABSURD = "security_id,as_of,price,source\nAAPL,2022-12-29,100000000000000000,close\n"
ABSURD += "MSFT,2022-12-29,0.00000001,close\n"


def test_load_problem_when_the_feed_sends_absurd_prices_then_the_account_is_refused(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path, **{"history.csv": price_history(260), "absurd.csv": ABSURD})
    with pytest.raises(ValidationError) as refused:
        problem_of(engine, "10000001")
    said = str(refused.value)
    assert said.startswith("account 10000001 is held, not rebalanced: implausible_price: AAPL:")
    assert "price 100000000000000000 on 2022-12-29 is above the ceiling of 10000000" in said
    assert "MSFT: price 0.00000001 on 2022-12-29 is 1/2.345e+10 of the previous 234.53" in said


def test_propose_when_the_price_check_is_off_and_prices_are_absurd_then_quantities_are_exact(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """
    With the check switched off, 10000001's problem is built at absurd prices — MSFT
    at 1e-12 this time, so that buying 18% of the account in it takes some 10^30
    shares, more digits than Decimal's default 28: every method proposes absurd trades,
    but every quantity is a whole number of its security's steps, in plain digits — in
    the proposal and as the store keeps it.
    """
    absurder = ABSURD.replace("0.00000001", "0.000000000001")
    load_firm(engine, tmp_path, **{"history.csv": price_history(260), "absurd.csv": absurder})
    problem = load_problem(
        engine,
        account_id="10000001",
        as_of=AS_OF,
        firm_band=BandPolicy.preset("5/25").band(),
        max_price_age=timedelta(days=4),
        check=PriceCheck(on=False),
    )
    history = load_history(engine, problem=problem, as_of=AS_OF, lookback=TWO_YEARS)
    proposed = propose(
        engine,
        problem=problem,
        scenarios=choose(["bands", "cash", "full"]),
        history=history,
        as_of=AS_OF,
    )
    step = {h.security_id: h.security.trading.step for h in problem.holdings}
    wide = decimal.Context(prec=100)
    quantities = [t.quantity for _, p in proposed.results for t in p.trades]
    assert any(q > D("1e28") for q in quantities)  # the MSFT bought at 1e-12
    with engine.connect() as connection:
        [stored] = repo.proposals(connection, account_id="10000001")
    kept = {(t["security_id"], t["side"]): t["quantity"] for t in stored["trades"]}
    for _, proposal in proposed.results:
        for trade in proposal.trades:
            grid = step[trade.security_id]
            assert wide.remainder(trade.quantity, grid) == 0, trade
            assert trade.quantity.as_tuple().exponent == min(grid.as_tuple().exponent, 0)
            assert "E" not in str(trade.quantity)
    for (security, _), quantity in kept.items():
        assert wide.remainder(quantity, step[security]) == 0
        assert "E" not in str(quantity)


def test_load_problem_when_a_replacement_has_an_implausible_price_then_it_is_not_offered(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    10000001 holds SPYA, whose harvest replacement is TOTL; TOTL is in no lot and no
    model, so its price holds nobody — but at 1e-8 it is not bought to keep SPYA's
    exposure either. (SPYA's $378 loss is a harvest at a $100 and 1% minimum.)
    """
    monkeypatch.setenv("POISE_HARVEST_MIN_LOSS", "100")
    monkeypatch.setenv("POISE_HARVEST_MIN_LOSS_FRACTION", "0.01")
    absurd = "security_id,as_of,price,source\nTOTL,2022-12-29,0.00000001,close\n"
    load_firm(engine, tmp_path, **{"history.csv": price_history(260), "totl.csv": absurd})
    assert "TOTL" not in {h.security_id for h in problem_of(engine, "10000001").holdings}
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    (fixed / "totl.csv").write_text(absurd.replace("0.00000001", "189.52"))
    ingest_paths(engine, [fixed / "totl.csv"], today=TODAY)
    assert "TOTL" in {h.security_id for h in problem_of(engine, "10000001").holdings}
