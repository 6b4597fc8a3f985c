"""The continuous problem's solver: refined only where it must be, shared by the solves
that only narrow what may be traded — and the whole-share polish's moves, valued all at
once, against each move valued on its own."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import clarabel
import numpy as np
import pytest
from bench.optimize_gap import Continuous as Reference
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.optimize.test_meetings import tangled

from poise.optimize.meetings import settle, value
from poise.optimize.program import Arrays, Continuous, Limits, _root, tracking
from poise.optimize.whole import _Coarse

HERE = Path(__file__).parent


def stops_short() -> tuple[Arrays, Limits]:
    """An account of the 10,000-account demo firm (10 securities, 22 lots) whose problem
    the solver does not converge on without refining each step's solve."""
    data = json.loads((HERE / "short_account.json").read_text())
    limits = Limits(**data.pop("limits"))
    fields = {
        name: np.array(value) if isinstance(value, list) else value for name, value in data.items()
    }
    fields["lot_of"] = fields["lot_of"].astype(np.int64)
    fields["identity"] = fields["identity"].astype(np.int64)
    fields["lot_loss"] = fields["lot_loss"].astype(bool)
    return Arrays(**fields), limits


def test_continuous_when_the_quick_solve_stops_short_then_a_refined_one_finds_the_optimum() -> None:
    a, limits = stops_short()
    program = Continuous(a, limits)
    quick = program.state.quick.solve()
    # The case this test is for: without refinement, the solver stops short here.
    assert quick.status is not clarabel.SolverStatus.Solved
    way = program.solve()
    assert way is not None
    assert program.state.careful is not None
    nothing = np.zeros(len(a.held), dtype=bool)
    reference = Reference(a, limits).solve(forbid=nothing, keep=np.zeros(len(a.lot_of), bool))
    assert reference is not None
    assert value(a, limits, way) == pytest.approx(reference[0], abs=1e-7)


def test_continuous_when_solved_again_after_a_refined_solve_then_both_solvers_follow() -> None:
    a, limits = stops_short()
    program = Continuous(a, limits)
    first = program.solve()
    assert first is not None
    assert program.state.careful is not None
    closed = np.zeros(len(a.held), dtype=bool)
    closed[int(np.argmax(first.buy))] = True  # its largest buy may not be made now
    again = program.solve(forbid=closed)
    assert again is not None
    assert again.buy[closed].max() == 0.0
    reference = Reference(a, limits).solve(forbid=closed, keep=np.zeros(len(a.lot_of), bool))
    assert reference is not None
    assert value(a, limits, again) == pytest.approx(reference[0], abs=1e-7)


@st.composite
def narrowed_case(draw: st.DrawFn) -> tuple[Arrays, Limits, Arrays]:
    """A tangled account, and the same with some securities left as they are (what the
    minimum trade size does to it)."""
    a, limits = draw(tangled())
    left = np.array(draw(st.lists(st.booleans(), min_size=len(a.held), max_size=len(a.held))))
    narrow = replace(
        a,
        buy_cap=np.where(left, 0.0, a.buy_cap),
        lot_cap=np.where(left[a.lot_of], 0.0, a.lot_cap),
    )
    return a, limits, narrow


@settings(max_examples=25, deadline=None)
@given(narrowed_case())
def test_of_property_when_the_solver_is_shared_then_it_solves_as_a_fresh_set_up(
    case: tuple[Arrays, Limits, Arrays],
) -> None:
    a, limits, narrow = case
    shared = Continuous(a, limits)
    shared.solve()  # the solver holds the wider problem's right-hand side
    view = Continuous.of(narrow, limits, shared)
    assert view.state is shared.state
    mine, fresh = view.solve(), Continuous(narrow, limits).solve()
    assert (mine is None) == (fresh is None)
    if mine is not None and fresh is not None:  # the same problem: the same optimum
        assert value(narrow, limits, mine) == pytest.approx(value(narrow, limits, fresh), abs=1e-9)
        assert mine.buy[narrow.buy_cap <= 0].max(initial=0.0) == 0.0
        assert mine.sell[narrow.lot_cap <= 0].max(initial=0.0) == 0.0


@st.composite
def polished(draw: st.DrawFn) -> tuple[Arrays, Limits]:
    """A tangled account under limits that the moves may break — and, at times, two of
    its securities one identity (as SPY and VOO are), so that a move may make a wash
    sale."""
    a, limits = draw(tangled())
    if draw(st.booleans()):
        identity = a.identity.copy()
        identity[identity == identity[1]] = identity[0]
        a = replace(a, identity=identity)
    unit = float(a.unit.max())
    limits = replace(
        limits,
        turnover=draw(st.sampled_from([None, 0.05, 0.2])),
        gain=draw(st.sampled_from([None, 0.0, 0.01])),
        min_trade=draw(st.sampled_from([0.0, unit * 1.5, 0.01])),
        drift=draw(st.sampled_from([None, np.full(len(a.held), 0.03)])),
    )
    return a, limits


@settings(max_examples=60, deadline=None)
@given(polished(), st.lists(st.integers(-4, 4), min_size=4, max_size=4))
def test_moves_property_when_valued_at_once_then_each_is_its_score_alone(
    case: tuple[Arrays, Limits], offsets: list[int]
) -> None:
    a, limits = case
    start = settle(a, limits).weights
    if start is None:
        return
    search = _Coarse(a, limits, start)
    index = search.index.tolist()
    steps = search.steps(start)
    for i, offset in zip(index, offsets, strict=False):  # from elsewhere than the optimum too
        steps[i] += offset
    current = search.weights(start, steps)
    if current is None:
        return
    valued = search._moves(current, steps, index)
    for row, i in enumerate(index):
        for column, move in enumerate((1, -1)):
            trial = dict(steps)
            trial[i] += move
            alone = search.score(search.weights(start, trial))
            if alone == np.inf:
                assert valued[row, column] == np.inf, (i, move)
            else:
                assert valued[row, column] == pytest.approx(alone, rel=1e-9, abs=1e-12), (i, move)


def test_continuous_when_asked_the_same_problem_again_then_it_is_not_solved_again() -> None:
    a, limits = stops_short()
    program = Continuous(a, limits)
    closed = np.zeros(len(a.held), dtype=bool)
    closed[0] = True
    first, other = program.solve(), program.solve(forbid=closed)
    assert len(program.state.solved) == 2
    view = Continuous.of(replace(a, buy_cap=np.where(closed, 0.0, a.buy_cap)), limits, program)
    again = view.solve()  # the same problem as the second, asked another way
    assert len(program.state.solved) == 2
    assert first is not None
    assert other is not None
    assert again is not None
    assert np.array_equal(again.buy, other.buy)


def test_of_when_the_problem_differs_beyond_its_caps_then_it_is_set_up_anew() -> None:
    a, limits = stops_short()
    program = Continuous(a, limits)
    for other, other_limits in (
        (replace(a, held=a.held * 0.5), limits),
        (replace(a, cash=a.cash + 0.01), limits),
        (a, replace(limits, turnover=0.1)),
    ):
        fresh = Continuous.of(other, other_limits, program)
        assert fresh.state is not program.state
    assert Continuous.of(a, limits, program).state is program.state


def test_continuous_when_well_conditioned_then_the_quick_solve_alone_answers() -> None:
    # Twelve securities with risk of their own besides three factors: nothing nearly
    # collinear, so the unrefined solve meets its tolerances and no refined solver is made.
    rng = np.random.default_rng(7)
    n = 12
    a = Arrays(
        held=np.full(n, 0.9 / n),
        target=rng.dirichlet(np.ones(n)) * 0.98,
        unit=np.full(n, 1e-4),
        lot_of=np.repeat(np.arange(n), 2),
        lot_cap=np.full(2 * n, 0.45 / n),
        lot_tax=np.tile([0.04, -0.06], n),
        lot_gain=np.tile([0.2, -0.3], n),
        lot_loss=np.tile([False, True], n),
        buy_cap=np.full(n, np.inf),
        identity=np.arange(n),
        cash=0.1,
        half_spread=0.0005,
        exposures=rng.normal(0, 0.08, (n, 3)),
        specific=np.full(n, 0.02),
    )
    limits = Limits(risk=1.0, tax=1.0, cost=1.0, turnover=None, gain=None, min_trade=0.0)
    program = Continuous(a, limits)
    closed = np.zeros(n, dtype=bool)
    closed[:3] = True
    assert program.solve() is not None
    assert program.solve(forbid=closed) is not None
    assert program.state.careful is None


@st.composite
def factor_models(draw: st.DrawFn) -> Arrays:
    """An account's risk model alone: ``n`` securities under ``k`` factors, with or
    without risk of their own, at times two of them exactly alike (a singular
    covariance, as two funds of one index nearly are)."""
    n = draw(st.integers(1, 12))
    k = draw(st.integers(1, n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    exposures = rng.normal(0, 0.1, (n, k))
    specific = rng.uniform(0.0, 0.02, n) if draw(st.booleans()) else np.zeros(n)
    if n > 1 and draw(st.booleans()):
        exposures[1], specific[1] = exposures[0], specific[0]
    return risk_only(exposures, specific)


def risk_only(exposures: np.ndarray, specific: np.ndarray) -> Arrays:
    """An account with nothing to trade: only its risk model matters."""
    n, nothing = len(specific), np.zeros(0)
    return Arrays(
        held=np.zeros(n), target=np.zeros(n), unit=np.ones(n), lot_of=np.zeros(0, np.int64),
        lot_cap=nothing, lot_tax=nothing, lot_gain=nothing, lot_loss=np.zeros(0, bool),
        buy_cap=np.zeros(n), identity=np.arange(n), cash=0.0, half_spread=0.0,
        exposures=exposures, specific=specific,
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(factor_models(), st.integers(0, 2**32 - 1))
def test_root_property_when_taken_then_it_gives_every_gap_its_tracking_error(
    a: Arrays, seed: int
) -> None:
    root = _root(a)
    n = len(a.held)
    assert root.shape == (n, n)
    assert np.allclose(np.tril(root, -1), 0.0)  # upper triangular: half the entries
    assert np.allclose(root.T @ root, a.covariance, atol=1e-12)
    gap = np.random.default_rng(seed).normal(0, 0.05, n)
    assert float(np.linalg.norm(root @ gap)) == pytest.approx(tracking(a, gap), rel=1e-9, abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(tangled(), st.booleans())
def test_continuous_property_when_the_covariance_is_singular_then_it_finds_the_reference_optimum(
    case: tuple[Arrays, Limits], alike: bool
) -> None:
    # Two of the account's securities moving exactly alike (SPY and VTI here): the
    # covariance is singular, its triangular root has a zero on the diagonal, and the
    # optimum is still the one a modelling layer finds from the factors themselves.
    a, limits = case
    if alike:
        exposures = a.exposures.copy()
        exposures[1] = exposures[0]
        a = replace(a, exposures=exposures)
    program = Continuous(a, limits)
    assert program.data[3][2].dim == 1 + len(a.held)  # the triangular cone was taken
    way = program.solve()
    reference = Reference(a, limits).solve(
        forbid=np.zeros(len(a.held), bool), keep=np.zeros(len(a.lot_of), bool)
    )
    assert (way is None) == (reference is None)
    if way is not None and reference is not None:
        assert value(a, limits, way) == pytest.approx(reference[0], abs=1e-7)


def test_root_when_a_specific_variance_is_below_zero_then_it_counts_as_none() -> None:
    # Arrays made elsewhere than the risk model may carry a rounding's −1e-18: the factor
    # form leaves such a security without risk of its own, and so does the root.
    a = risk_only(np.array([[0.1], [0.2], [0.1]]), np.array([0.01, -1e-18, 0.02]))
    root = _root(a)
    assert np.isfinite(root).all()
    ignored = replace(a, specific=np.array([0.01, 0.0, 0.02]))
    assert np.allclose(root.T @ root, ignored.covariance, atol=1e-15)
