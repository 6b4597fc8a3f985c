"""A household rebalanced as one problem: its accounts' trades decided together.

The tax law looks at the household — a wash sale is a loss sale in one account and a
purchase of the same (or a substantially identical) security in any account of it,
a spouse's and the IRAs included (IRS Publication 550) — and so, when the household
has one allocation, does the portfolio. Money never moves between accounts in a
proposal: each account's trades balance against its own cash, which stays at or
above its reserve, as the one-account engine keeps it.

**Each account to its own model** (the household has no allocation of its own): every
account is rebalanced by the one-account method; wherever one account would sell an
identity at a loss while another buys it — a wash sale across accounts, and where the
buyer is an IRA or a Roth, a loss lost for good (Rev. Rul. 2008-5) — the household
settles that *meeting* one way or the other, as the one-account engine settles its
own (:mod:`poise.optimize.meetings`): **the harvest wins** (no account of the
household buys the identity; the buyer buys something else or nothing) or **the
position does** (no taxable account sells its loss lots). With ``optimize`` every
meeting of the household is settled together, by one branch and bound over the
accounts' continuous problems (:func:`poise.optimize.tax_aware.settle_household`), and
each account is then solved once with the decisions as its own constraints. Whatever
meetings are left after rounding to shares — or every meeting, with another method —
are settled one by one, the most tax at stake first: both ways re-solved, the one with
the lower sum of the accounts' objectives, in dollars, kept (a way, once chosen, only
narrows what the accounts may do, so this ends).

**One allocation across the accounts** (a model on the household): first a
continuous program over every account's holdings decides where each security is held
— the household's tracking error to its model, the tax on gains realised in taxable
accounts (harvests are left to the accounts), trading cost, and an **asset-location**
term: each dollar held costs its :class:`~poise.domain.location.Location` cost for
the account's kind, times a weight the user sets (``location_weight``, a fraction a
year). Selling gains costs tax now, location saves a fraction a year, so a household
moves toward its location over successive rebalances, with new money and losses and
tax-free trades in its retirement accounts first, and does not realise gains just to
relocate unless the weight says it is worth it. Each account's part of the solution
becomes its own targets; each account is then rebalanced to them by the one-account
method in whole shares, and the meetings settled as above.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

import clarabel
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from poise.domain.errors import ValidationError
from poise.domain.location import Location
from poise.domain.money import ZERO
from poise.optimize.problem import Problem
from poise.optimize.program import Rows
from poise.optimize.risk import RiskModel
from poise.optimize.scenarios import Scenario, run
from poise.optimize.tax_aware import Settlement, objective, settle_household
from poise.optimize.trades import Proposal, Side

__all__ = [
    "AccountResult",
    "HouseholdProblem",
    "HouseholdProposal",
    "HouseholdSettings",
    "allocate",
    "meetings",
    "rebalance_household",
]

Floats = npt.NDArray[np.float64]
Covariance = Callable[[Sequence[str]], Floats]  # ids → their annual covariance, in that order
MAX_ROUNDS = 24  # meetings settled one by one; beyond, every remaining harvest wins
TARGET_PLACES = Decimal("0.000001")  # derived targets, to a ten-thousandth of a point
LOCATION_SHOWN = Decimal("0.01")  # a location change smaller than this is not explained


@dataclass(frozen=True, slots=True)
class HouseholdSettings:
    location_weight: float = 0.01  # a year, per dollar of the most misplaced asset
    location: Location = field(default_factory=Location)


@dataclass(frozen=True, slots=True)
class HouseholdProblem:
    """A household's tradeable accounts, each as its one-account problem. ``joint``:
    the household has one allocation, and every problem's targets are the
    household's model (as weights of the household)."""

    household_id: str
    problems: tuple[Problem, ...]
    joint: bool = False

    def __post_init__(self) -> None:
        ids = [p.account.account_id for p in self.problems]
        if len(set(ids)) != len(ids):
            raise ValidationError(f"household {self.household_id}: an account is given twice")
        others = {p.account.household_id for p in self.problems} - {self.household_id}
        if others:
            raise ValidationError(
                f"household {self.household_id}: accounts of {sorted(others)} given"
            )

    @property
    def value(self) -> Decimal:
        return sum((p.value for p in self.problems), ZERO)


@dataclass(frozen=True, slots=True)
class AccountResult:
    """One account's part: the problem it was solved as (its targets the household's
    share of it, when the household has one allocation) and its proposal."""

    problem: Problem
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class HouseholdProposal:
    household_id: str
    method: str
    accounts: tuple[AccountResult, ...]
    meetings: tuple[str, ...] = ()  # how each meeting across accounts was settled
    location: tuple[str, ...] = ()  # where the household's assets are held, and why

    @property
    def trades(self) -> int:
        return sum(len(r.proposal.trades) for r in self.accounts)

    @property
    def estimated_tax(self) -> Decimal:
        return sum((r.proposal.estimated_tax for r in self.accounts), ZERO)


# ── the meetings across accounts ─────────────────────────────────────────────


def _identity(problem: Problem, security_id: str) -> str:
    return problem.holding(security_id).security.wash_sale_identity


def _loss_sold(problem: Problem, proposal: Proposal) -> dict[str, Decimal]:
    """Identity → the loss its sales in ``proposal`` realise (positive). Only a taxable
    account's: a loss inside an IRA or a Roth is no loss to the tax law."""
    found: dict[str, Decimal] = defaultdict(lambda: ZERO)
    if not problem.account.registration.taxable:
        return {}
    for trade in proposal.trades:
        loss = sum((-s.gain for s in trade.lots if s.gain < ZERO), ZERO)
        if loss > ZERO:
            found[_identity(problem, trade.security_id)] += loss
    return dict(found)


def _bought(problem: Problem, proposal: Proposal) -> set[str]:
    return {_identity(problem, t.security_id) for t in proposal.trades if t.side is Side.BUY}


@dataclass(frozen=True, slots=True)
class Meeting:
    identity: str
    sellers: Mapping[str, Decimal]  # account → loss it would harvest
    buyers: frozenset[str]  # accounts that would buy

    @property
    def at_stake(self) -> Decimal:
        return sum(self.sellers.values(), ZERO)


def meetings(results: Mapping[str, AccountResult]) -> list[Meeting]:
    """Every identity one account sells at a loss while another buys it, the most
    loss at stake first."""
    sold: dict[str, dict[str, Decimal]] = defaultdict(dict)
    bought: dict[str, set[str]] = defaultdict(set)
    for account_id, r in results.items():
        for identity, loss in _loss_sold(r.problem, r.proposal).items():
            sold[identity][account_id] = loss
        for identity in _bought(r.problem, r.proposal):
            bought[identity].add(account_id)
    found = [
        Meeting(identity, sellers, frozenset(bought[identity]))
        for identity, sellers in sold.items()
        if bought.get(identity)
    ]
    return sorted(found, key=lambda m: (-m.at_stake, m.identity))


def _closed(problem: Problem, identity: str, *, buy: bool, why: str) -> Problem:
    """``problem`` with ``identity`` no longer bought (``buy``) or sold at a loss."""
    holdings = tuple(
        (
            replace(h, no_buy=h.no_buy or why)
            if buy
            else replace(h, no_loss_sale=h.no_loss_sale or why)
        )
        if h.security.wash_sale_identity == identity
        else h
        for h in problem.holdings
    )
    return replace(problem, holdings=holdings)


def _names(ids: Iterable[str]) -> str:
    return ", ".join(sorted(ids))


def _settle(
    results: dict[str, AccountResult],
    solve: Callable[[Problem, bool], Proposal],
    score: Callable[[AccountResult], float],
    searched: Callable[[Problem], bool],
) -> list[str]:
    """Settle every meeting across the accounts of ``results`` (changed in place; each
    a quick solve to begin with); how each was settled, in words. ``solve(problem,
    quick)``: the account's proposal — quick (no whole-share search) to weigh the two
    ways of a meeting. Then each account whose full solve may differ (``searched``) is
    solved in full, once for the constraints it ends with, and any meeting that makes
    is settled in turn."""
    said: list[str] = []
    full: set[str] = set()  # accounts whose result is the full solve of their problem now
    for _ in range(MAX_ROUNDS):
        full -= _settle_quickly(results, solve, score, said)
        todo = [a for a in sorted(results) if a not in full and searched(results[a].problem)]
        for account_id in todo:
            problem = results[account_id].problem
            results[account_id] = AccountResult(problem, solve(problem, False))
            full.add(account_id)
        if not meetings(results):
            return said
        if not todo:  # the quick settling ran out of rounds
            break
    for m in meetings(results):  # what is left: every harvest wins
        for account_id in sorted(m.buyers - set(m.sellers)) or sorted(m.buyers):
            problem = _closed(
                results[account_id].problem, m.identity, buy=True, why="a loss sale elsewhere"
            )
            results[account_id] = AccountResult(problem, solve(problem, False))
        said.append(f"{m.identity}: the harvest wins; no account of the household buys it")
    if meetings(results):
        raise ValidationError("the household's meetings could not be settled")
    return said


def _settle_quickly(
    results: dict[str, AccountResult],
    solve: Callable[[Problem, bool], Proposal],
    score: Callable[[AccountResult], float],
    said: list[str],
) -> set[str]:
    """Settle the meetings one by one, the largest loss first, each way weighed with
    quick solves; the accounts whose constraints changed."""
    changed: set[str] = set()
    for _ in range(MAX_ROUNDS):
        found = meetings(results)
        if not found:
            break
        m = found[0]
        buyers = sorted(m.buyers - set(m.sellers)) or sorted(m.buyers)
        sellers = sorted(m.sellers)
        why_buy = f"{m.identity} is sold at a loss in account {_names(sellers)} of the household"
        why_sell = f"{m.identity} is bought in account {_names(buyers)} of the household"
        ways = {}
        for harvest in (True, False):
            solved = {}
            for account_id in buyers if harvest else sellers:
                problem = _closed(
                    results[account_id].problem,
                    m.identity,
                    buy=harvest,
                    why=why_buy if harvest else why_sell,
                )
                solved[account_id] = AccountResult(problem, solve(problem, True))
            worse = sum(score(solved[a]) - score(results[a]) for a in solved)
            ways[harvest] = (worse, solved)
        harvest = ways[True][0] <= ways[False][0]
        results.update(ways[harvest][1])
        changed |= set(ways[harvest][1])
        permanent = [a for a in buyers if not results[a].problem.account.registration.taxable]
        lost = (
            f" (in {_names(permanent)}, a retirement account, the loss would be lost for good)"
            if permanent
            else ""
        )
        said.append(
            f"{m.identity}: account {_names(sellers)} harvests a ${m.at_stake:,.2f} loss,"
            f" so account {_names(buyers)} does not buy it{lost}"
            if harvest
            else f"{m.identity}: account {_names(buyers)} buys it, so account"
            f" {_names(sellers)} keeps its loss lots rather than have the loss washed{lost}"
        )
    return changed


def _decided(problem: Problem, settled: Settlement) -> Problem:
    """``problem`` with the household's settled meetings as its own constraints: an
    identity whose harvest won is bought nowhere, one whose position won is sold at a
    loss in no taxable account."""
    held = {h.security.wash_sale_identity for h in problem.holdings}
    closed = settled.harvest | (settled.keep if problem.account.registration.taxable else set())
    for identity in sorted(held & closed):
        sold, bought = settled.met.get(identity, (frozenset(), frozenset()))
        if identity in settled.harvest:
            why = f"sold at a loss in account {_names(sold)} of the household"
        else:
            why = f"bought in account {_names(bought)} of the household"
        problem = _closed(problem, identity, buy=identity in settled.harvest, why=why)
    return problem


def _described(settled: Settlement, results: Mapping[str, AccountResult]) -> list[str]:
    """How each meeting across accounts was settled, in words (a meeting within one
    account is that account's own, as when it is rebalanced alone)."""
    said = []
    for identity, (sold, bought) in settled.met.items():
        buyers = sorted(bought - sold)
        if not buyers or identity not in settled.harvest | settled.keep:
            continue
        sellers = sorted(sold)  # taxable accounts: only there is a loss a loss
        permanent = [a for a in buyers if not results[a].problem.account.registration.taxable]
        lost = (
            f" (in {_names(permanent)}, a retirement account, the loss would be lost for good)"
            if permanent
            else ""
        )
        if identity in settled.harvest:
            loss = sum(
                (_loss_sold(results[a].problem, results[a].proposal).get(identity, ZERO)
                 for a in sellers),
                ZERO,
            )  # fmt: skip
            harvested = f"harvests a ${loss:,.2f} loss" if loss > ZERO else "may harvest its loss"
            said.append(
                f"{identity}: account {_names(sellers)} {harvested},"
                f" so account {_names(buyers)} does not buy it{lost}"
            )
        else:
            said.append(
                f"{identity}: account {_names(buyers)} buys it, so account {_names(sellers)}"
                f" keeps its loss lots rather than have the loss washed{lost}"
            )
    return said


# ── one allocation across the accounts ───────────────────────────────────────


def _factor(covariance: Floats) -> Floats:
    """``F`` with ``Fᵀ F = covariance`` (the covariance may be singular)."""
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    root: Floats = (vectors * np.sqrt(np.clip(values, 0.0, None))).T
    return root


@dataclass(frozen=True, slots=True)
class _Block:
    """Where one account's variables sit: holdings after (x), buys, lot sales — all
    as weights of the household."""

    problem: Problem
    x: int
    buy: int
    sell: int
    lot_of: npt.NDArray[np.int64]


def allocate(
    hp: HouseholdProblem,
    covariance: Covariance,
    *,
    settings: HouseholdSettings,
    risk: float = 1.0,
    tax: float = 1.0,
    cost: float = 1.0,
    half_spread: float = 0.0005,
) -> dict[str, dict[str, Decimal]]:
    """Where the household's model is held: each account's target weights (of the
    account), from the continuous program described in the module (Clarabel; every
    amount a weight of the household). Every problem's targets are the household's
    model as weights of the household."""
    total = float(hp.value)
    if total <= 0:
        raise ValidationError(f"household {hp.household_id} has no value to allocate")
    union = sorted({h.security_id for p in hp.problems for h in p.holdings})
    where = {s: i for i, s in enumerate(union)}
    targets = np.zeros(len(union))
    for p in hp.problems:
        for h in p.holdings:
            targets[where[h.security_id]] = float(h.target)
    root = _factor(covariance(union))
    blocks, m, objective, cones = _program(
        hp, where, settings, tax=tax, cost=cost, half_spread=half_spread
    )
    t_ = len(objective) - 1
    objective[t_] = risk
    m.add(np.array([0]), np.array([t_]), -1.0, [0.0])  # τ ≥ ‖F (household − targets)‖
    k = root.shape[0]
    rows_, cols_, values_ = [], [], []
    for b in blocks:  # every account's holdings add up to the household's, in the same rows
        columns = np.array([where[h.security_id] for h in b.problem.holdings], dtype=np.int64)
        rows, cols = np.meshgrid(np.arange(k), np.arange(len(columns)), indexing="ij")
        rows_.append(rows.ravel())
        cols_.append(b.x + cols.ravel())
        values_.append(-root[:, columns].ravel())
    m.add(np.concatenate(rows_), np.concatenate(cols_), np.concatenate(values_), -root @ targets)
    zero, nonneg = cones
    options = clarabel.DefaultSettings()
    options.verbose = False
    options.max_threads = 1
    solution = clarabel.DefaultSolver(
        sp.csc_matrix((t_ + 1, t_ + 1)),
        objective,
        m.matrix(),
        np.concatenate(m.rhs),
        [
            clarabel.ZeroConeT(zero),
            clarabel.NonnegativeConeT(nonneg),
            clarabel.SecondOrderConeT(m.count - zero - nonneg),
        ],
        options,
    ).solve()
    if solution.status not in (clarabel.SolverStatus.Solved, clarabel.SolverStatus.AlmostSolved):
        raise ValidationError(
            f"household {hp.household_id}: its allocation could not be solved ({solution.status})"
        )
    x = np.clip(np.asarray(solution.x), 0.0, None)
    found: dict[str, dict[str, Decimal]] = {}
    for b in blocks:
        p = b.problem
        share = total / float(p.value) if p.value > 0 else 0.0
        found[p.account.account_id] = {
            h.security_id: Decimal(repr(float(x[b.x + i] * share))).quantize(TARGET_PLACES)
            for i, h in enumerate(p.holdings)
        }
    return found


def _program(
    hp: HouseholdProblem,
    where: Mapping[str, int],
    settings: HouseholdSettings,
    *,
    tax: float,
    cost: float,
    half_spread: float,
) -> tuple[list[_Block], Rows, Floats, tuple[int, int]]:
    """The allocation's variables, its equality and inequality rows, and its linear
    objective (the last variable, τ, the tracking error, is the caller's to bound)."""
    total = float(hp.value)
    blocks, at = [], 0
    for p in hp.problems:
        n = len(p.holdings)
        lot_of = np.array([i for i, h in enumerate(p.holdings) for _ in h.lots], dtype=np.int64)
        blocks.append(_Block(p, at, at + n, at + 2 * n, lot_of))
        at += 2 * n + len(lot_of)
    m = Rows(at + 1)
    for b in blocks:  # x − buy + Σ sells of the holding = held now
        n, lots = len(b.problem.holdings), len(b.lot_of)
        every = np.arange(n)
        m.add(
            np.concatenate([every, every, b.lot_of]),
            np.concatenate([b.x + every, b.buy + every, b.sell + np.arange(lots)]),
            np.concatenate([np.ones(n), -np.ones(n), np.ones(lots)]),
            [float(h.value) / total for h in b.problem.holdings],
        )
    zero = m.count
    objective = np.zeros(at + 1)  # the last: τ
    for b in blocks:
        p = b.problem
        n, lots = len(p.holdings), len(b.lot_of)
        every, each_lot = np.arange(n), np.arange(lots)
        for start, count in ((b.x, n), (b.buy, n), (b.sell, lots)):  # all ≥ 0
            m.add(np.arange(count), start + np.arange(count), -1.0, np.zeros(count))
        pairs = [(h, lot) for h in p.holdings for lot in h.lots]
        cap = [0.0 if h.no_sell else float(lot.quantity * h.price) / total for h, lot in pairs]
        m.add(each_lot, b.sell + each_lot, 1.0, cap)
        m.add(every, b.buy + every, 1.0, [0.0 if h.no_buy else 2.0 for h in p.holdings])
        # The account's own cash pays for its buys and keeps its reserve.
        invested = max(float(p.value - p.reserve), float(p.value - p.cash)) / total
        m.add(np.zeros(n, dtype=np.int64), b.x + every, 1.0, [invested])
        gain = np.array([max(0.0, 1.0 - float(lot.basis_per_share / h.price)) for h, lot in pairs])
        objective[b.sell : b.sell + lots] = tax * float(p.long_rate) * gain + cost * half_spread
        objective[b.buy : b.buy + n] = cost * half_spread
        objective[b.x : b.x + n] = settings.location_weight * np.array(
            [settings.location.cost(p.account.registration, h.security) for h in p.holdings]
        )
    nonneg = m.count - zero
    return blocks, m, objective, (zero, nonneg)


def _targeted(problem: Problem, targets: Mapping[str, Decimal]) -> Problem:
    holdings = tuple(replace(h, target=targets.get(h.security_id, ZERO)) for h in problem.holdings)
    invested = sum((h.target for h in holdings), ZERO)
    return replace(problem, holdings=holdings, cash_target=max(ZERO, 1 - invested))


def _location_lines(
    results: Sequence[AccountResult], settings: HouseholdSettings, before: Sequence[Problem]
) -> list[str]:
    """Where each asset class of the household is held, by kind of account, before and
    after — where it moved."""
    location = settings.location

    def shares(pairs: Sequence[tuple[Problem, Proposal | None]]) -> dict[str, dict[str, Decimal]]:
        held: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
        for problem, proposal in pairs:
            kind = Location.kind(problem.account.registration)
            quantity = {h.security_id: h.quantity for h in problem.holdings}
            if proposal is not None:
                for t in proposal.trades:
                    quantity[t.security_id] += t.signed_quantity
            for h in problem.holdings:
                held[h.security.asset_class][kind] += quantity[h.security_id] * h.price
        return {c: dict(k) for c, k in held.items()}

    was = shares([(p, None) for p in before])
    now = shares([(r.problem, r.proposal) for r in results])
    lines = []
    for asset_class in sorted(now):
        after_total = sum(now[asset_class].values(), ZERO)
        before_total = sum(was.get(asset_class, {}).values(), ZERO)
        if after_total <= ZERO:
            continue
        kinds = sorted(set(now[asset_class]) | set(was.get(asset_class, {})))
        moved = [
            (
                kind,
                was.get(asset_class, {}).get(kind, ZERO) / before_total if before_total else ZERO,
                now[asset_class].get(kind, ZERO) / after_total,
            )
            for kind in kinds
        ]
        if all(abs(b - a) < LOCATION_SHOWN for _, b, a in moved):
            continue
        parts = ", ".join(f"{kind} {b:.0%} → {a:.0%}" for kind, b, a in moved)
        probe = next(
            h.security
            for r in results
            for h in r.problem.holdings
            if h.security.asset_class == asset_class
        )
        score = location.score(probe)
        lines.append(
            f"{asset_class} (tax inefficiency {score.inefficiency:.1f},"
            f" growth {score.growth:.1f}): {parts}"
        )
    return lines


# ── the household's proposal ────────────────────────────────────────────────


def rebalance_household(
    hp: HouseholdProblem,
    covariance: Covariance,
    scenario: Scenario,
    settings: HouseholdSettings | None = None,
    *,
    per_account: Mapping[str, Scenario] | None = None,
    risk_model: Callable[[tuple[str, ...]], RiskModel] | None = None,
) -> HouseholdProposal:
    """The household's proposal: each account's trades, decided together, by
    ``scenario`` — or, for an account ``per_account`` names, by its own (the same
    method, with the account's smallest trade). ``risk_model``: the factor model of
    some securities' ``covariance`` (:meth:`RiskModel.of`), where the caller keeps
    them already; else each is made here."""
    scenarios = per_account or {}
    settings = settings or HouseholdSettings()
    risks: dict[tuple[str, ...], RiskModel] = {}

    def risk_of(problem: Problem) -> RiskModel:
        ids = tuple(h.security_id for h in problem.holdings)
        if ids not in risks:
            risks[ids] = (
                RiskModel.of(list(ids), covariance(ids)) if risk_model is None else risk_model(ids)
            )
        return risks[ids]

    def scenario_of(problem: Problem) -> Scenario:
        return scenarios.get(problem.account.account_id, scenario)

    def solve(problem: Problem, quick: bool = False) -> Proposal:
        chosen = scenario_of(problem)
        if quick:
            chosen = replace(chosen, settings=replace(chosen.settings, exact=False))
        program = settled.programs.get(problem.account.account_id)  # as the search left it
        return run(problem, risk_of(problem), chosen, program=program)

    def score(r: AccountResult) -> float:  # in dollars: accounts differ in size
        settings = scenario_of(r.problem).settings
        fraction = objective(r.problem, r.proposal.trades, risk_of(r.problem), settings)
        return fraction * float(r.problem.value)

    problems = list(hp.problems)
    if hp.joint and problems:
        o = scenario.settings
        weights = allocate(hp, covariance, settings=settings, risk=o.risk, tax=o.tax, cost=o.cost)
        problems = [_targeted(p, weights[p.account.account_id]) for p in problems]

    def searched(problem: Problem) -> bool:  # its full solve may differ from a quick one
        chosen = scenario_of(problem)
        return chosen.method == "optimize" and chosen.settings.exact

    quick = len(problems) > 1  # meetings are weighed quickly; the end is solved in full
    settled = Settlement()
    if quick and all(scenario_of(p).method == "optimize" for p in problems):
        settled = settle_household([(p, risk_of(p), scenario_of(p).settings) for p in problems])
        problems = [_decided(p, settled) for p in problems]
    results = {p.account.account_id: AccountResult(p, solve(p, quick)) for p in problems}
    said = _described(settled, results)
    said += _settle(results, solve, score, searched) if quick else []
    ordered = tuple(results[p.account.account_id] for p in problems)
    return HouseholdProposal(
        household_id=hp.household_id,
        method=scenario.method,
        accounts=ordered,
        meetings=tuple(said),
        location=tuple(_location_lines(ordered, settings, hp.problems)) if hp.joint else (),
    )
