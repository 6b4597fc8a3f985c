"""Where a loss sale meets a buy of the same identity: which side wins.

A loss sale and a buy of the same (or a substantially identical) security in one
proposal would be a wash sale (IRS Publication 550), so at each such *meeting* one
side must give way: the harvest wins (nothing of the identity is bought; a
replacement, a security of another identity, keeps the exposure) or the position
does (the identity's loss lots are kept). The choices are coupled — harvesting one
identity may rule out the very security that would replace another's — so they are
made together, by branch and bound over the continuous problem of
:mod:`poise.optimize.program`:

* the problem with both sides allowed everywhere is a relaxation: its optimum is a
  lower bound on every way of settling the meetings, and so is the optimum of any
  node (some meetings settled, the rest free) on every way below it;
* a node whose solution has no meeting left is a way: the best found so far is the
  incumbent; a node whose bound is no better than the incumbent is pruned;
* otherwise the node branches on the meeting with the most at stake (the tax its
  loss sales save on the part bought back): harvest, or keep.

A first incumbent comes from dives — each meeting settled the way the solution moved
it (a net seller harvests, a net buyer keeps), again until none is left; every
harvest winning; and, where two identities that may meet are twins (a correlation of
at least ``TWIN``: SPY and VTI), the pair settled one harvesting into the other,
each way round, the rest both ways. Then the nodes are searched best bound first,
each solved when it is taken (a re-solve is only a new right-hand side for Clarabel:
under a millisecond in a small account). Where the first solution has up to
``EXACT_MEETINGS`` meetings the search runs to the end and is exact, to ``GAP`` (at
most ``2 ** (meetings + 1)`` solves besides the dives; in the demo firm 6 at the
median, 128 at most). Beyond, the relaxation is too loose to prove anything in time
— each free meeting may sell its losses and buy them back — so the dives alone
decide, in a few solves: a heuristic, measured against the exact search in
``bench/optimize_gap.py``. In an account of ``LARGE`` securities or more only the
dive where every harvest wins is taken (it was the better in every benchmark
account).

A household's meetings across its accounts (:func:`settle_household`) are the same
search over the accounts' problems together: a decision holds in every account, a
node's value is the sum of the accounts' (in weights of the household), and a node
re-solves only the accounts whose answer the decision changes. Its first way weighs
each meeting both ways in turn (``greedy``), which on demo households was the best
way in all but a few; the dives come after it only beyond ``EXACT_MEETINGS``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from poise.optimize.program import Arrays, Continuous, Limits, Weights, tracking

__all__ = [
    "GAP",
    "HouseholdSettled",
    "Part",
    "Settled",
    "clash",
    "of_identities",
    "settle",
    "settle_household",
    "sides",
    "value",
]

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
GAP = 1e-7  # of the account's value: a bound this close to the incumbent cannot beat it
EXACT_MEETINGS = 6  # meetings in the first solution: up to this many, the search is exact
DIVE_SOLVES = 4  # solves after the first the dives may take beyond it
TWIN = 0.95  # correlation: identities this alike are each other's replacement
TWIN_SOLVES = 8  # solves the dives from the twins' pairing may take
LARGE = 100  # securities: from here on a solve costs tens of milliseconds ...
LARGE_SOLVES = 2  # ... and the dive takes this many after the first
GREEDY_MORE = 8  # a household's meetings weighed one by one: solves beyond two a meeting

Decisions = tuple[tuple[int, bool], ...]  # (identity, harvest?) sorted by identity


@dataclass(frozen=True, slots=True)
class Settled:
    """The way the meetings were settled: the solution, how many solves it took, and
    whether the search finished (so the solution is the optimum, to ``GAP``)."""

    weights: Weights | None
    solves: int
    proven: bool


def value(a: Arrays, limits: Limits, weights: Weights) -> float:
    """The objective of a continuous solution."""
    sold = np.bincount(a.lot_of, weights=weights.sell, minlength=len(a.held))
    gap = a.held - a.target + weights.buy - sold
    traded = float(weights.buy.sum() + weights.sell.sum())
    return (
        limits.risk * tracking(a, gap)
        + limits.tax * float(a.lot_tax @ weights.sell)
        + limits.cost * a.half_spread * traded
    )


def clash(a: Arrays, solution: Weights) -> Bools:
    """Securities bought whose identity also sells a lot at a loss — each trade at
    least half a grid step, below which it is a solver's noise and rounds away."""
    half = a.unit / 2
    sold = (solution.sell > half[a.lot_of]) & a.lot_loss
    found: Bools = of_identities(a, a.identity[a.lot_of[sold]]) & (solution.buy > half)
    return found


def of_identities(a: Arrays, identities: Iterable[int] | npt.NDArray[np.int64]) -> Bools:
    """The securities of any of ``identities``."""
    count = len(a.held) if not len(a.identity) else max(len(a.held), int(a.identity.max()) + 1)
    chosen = np.zeros(count, dtype=bool)  # identities are numbered 0, 1, … (in a household,
    chosen[np.fromiter(identities, dtype=np.int64)] = True  # across its accounts)
    picked: Bools = chosen[a.identity]
    return picked


def sides(a: Arrays, solution: Weights) -> tuple[Bools, Bools]:
    """How a solution settled its meetings, as (securities not to be bought: those of
    an identity it harvests; lots not to be sold: the loss lots of an identity it
    buys)."""
    half = a.unit / 2
    harvested = a.identity[a.lot_of[(solution.sell > half[a.lot_of]) & a.lot_loss]]
    bought = a.identity[solution.buy > half]
    keep: Bools = a.lot_loss & of_identities(a, bought)[a.lot_of]
    return of_identities(a, harvested), keep


def _solved(
    program: Continuous, a: Arrays, limits: Limits, decisions: Decisions
) -> tuple[float, Weights] | None:
    """The optimum, and its value, with ``decisions`` held: nothing bought of an identity
    whose harvest wins, no loss lot sold of one whose position wins."""
    forbid = of_identities(a, [i for i, wins in decisions if wins])
    keep = a.lot_loss & of_identities(a, [i for i, wins in decisions if not wins])[a.lot_of]
    way = program.solve(forbid=forbid, keep=keep)
    return None if way is None else (value(a, limits, way), way)


class _Account:
    """One account's continuous problem, as the search sees it: a node's optimum, its
    meetings, and whether it has any."""

    def __init__(self, a: Arrays, limits: Limits, program: Continuous | None = None) -> None:
        self.a, self.limits = a, limits
        self.program = Continuous.of(a, limits, program)

    def solve(self, decisions: Decisions) -> tuple[float, Weights] | None:
        return _solved(self.program, self.a, self.limits, decisions)

    def clean(self, way: Weights) -> bool:
        return not clash(self.a, way).any()

    def meetings(self, way: Weights) -> list[tuple[float, int, bool]]:
        """A solution's meetings, the most at stake first: (the tax its loss sales save,
        on the part bought back — what settling it takes away —, identity, whether
        the identity is a net seller)."""
        a = self.a
        n = len(a.held)
        met = np.unique(a.identity[clash(a, way)])
        losses = np.where(a.lot_loss, way.sell, 0.0)

        def by_identity(per_lot: Floats) -> Floats:
            per_security = np.bincount(a.lot_of, weights=per_lot, minlength=n)
            return np.bincount(a.identity, weights=per_security, minlength=n).astype(np.float64)

        net = np.bincount(a.identity, weights=way.buy, minlength=n) - by_identity(way.sell)
        bought = np.bincount(a.identity, weights=way.buy, minlength=n)
        harvested, saved = by_identity(losses), by_identity(-a.lot_tax * losses)
        share = np.minimum(bought, harvested) / np.maximum(harvested, 1e-18)
        found = [(float(saved[i] * share[i]), int(i), bool(net[i] < 0)) for i in met]
        return sorted(found, reverse=True)


W = TypeVar("W")


class _Program(Protocol[W]):
    def solve(self, decisions: Decisions) -> tuple[float, W] | None: ...
    def clean(self, way: W) -> bool: ...
    def meetings(self, way: W) -> list[tuple[float, int, bool]]: ...


class _Search(Generic[W]):
    """The branch and bound: each node a set of decisions, each solved once."""

    def __init__(self, program: _Program[W], solves: int) -> None:
        self.program = program
        self.left = solves
        self.solved: dict[Decisions, tuple[float, W] | None] = {}
        self.best: tuple[float, W] | None = None
        self.chosen: Decisions = ()  # the decisions of the best

    def solve(self, decisions: Decisions) -> tuple[float, W] | None:
        """The node's optimum and its value (None: no trades satisfy it), once."""
        if decisions not in self.solved:
            self.left -= 1
            found = self.program.solve(decisions)
            self.solved[decisions] = found
            if (
                found is not None
                and self.program.clean(found[1])
                and (self.best is None or found[0] < self.best[0])
            ):
                self.best, self.chosen = found, decisions
        return self.solved[decisions]

    def meetings(self, way: W) -> list[tuple[float, int, bool]]:
        return self.program.meetings(way)

    def dive(self, decisions: Decisions = (), *, all_harvest: bool = False) -> W:
        """From ``decisions``, settle every meeting the way the solution moved it (or
        as a harvest), solve again, until none is left, no trades satisfy it, or the
        solves run out; the last solution found."""
        found = self.solved[()]
        assert found is not None
        last = found[1]
        while self.left > 0:
            found = self.solve(decisions)
            if found is None:
                return last
            last = found[1]
            met = self.meetings(last)
            if not met:
                return last
            chosen = dict(decisions)
            chosen.update((i, all_harvest or seller) for _, i, seller in met)
            if tuple(sorted(chosen.items())) == decisions:
                return last  # nothing left to settle here (its meetings are noise)
            decisions = tuple(sorted(chosen.items()))
        return last

    def paired(self, twins: Decisions) -> None:
        """Dives from the twins paired each way round, the rest as before: both ways."""
        if not twins:
            return
        self.left += TWIN_SOLVES
        for start in (twins, tuple((i, not wins) for i, wins in twins)):
            self.dive(start, all_harvest=True)
            self.dive(start)

    def greedy(self) -> None:
        """From the root, settle the meeting with the most at stake each way, keep the
        better way, and go on until none is left: two solves a meeting, each way weighed
        by its own optimum rather than a guess. Where the solves run out first, a dive
        settles the rest."""
        decisions: Decisions = ()
        while self.left > 1:
            found = self.solve(decisions)
            if found is None:
                return
            decided = dict(decisions)
            met = [m for m in self.meetings(found[1]) if m[1] not in decided]
            if not met:
                return
            ways = [tuple(sorted((*decisions, (met[0][1], wins)))) for wins in (True, False)]
            valued = [(f[0], way) for way in ways if (f := self.solve(way)) is not None]
            if not valued:
                return
            decisions = min(valued)[1]
        self.left += DIVE_SOLVES  # out of solves: the rest settled as the solution moved them
        self.dive(decisions)

    def search(self, root: tuple[float, W]) -> bool:
        """Best bound first from the root, each node solved when it is taken (bounded
        until then by its parent's value); True when it finished."""
        heap: list[tuple[float, int, Decisions]] = [(root[0], 0, ())]
        order = 1
        while heap:
            bound, _, decisions = heapq.heappop(heap)
            if self.best is not None and bound >= self.best[0] - GAP:
                return True  # every node left is bounded by this one, or worse
            if decisions not in self.solved and self.left <= 0:
                return False
            found = self.solve(decisions)
            if found is None or (self.best is not None and found[0] >= self.best[0] - GAP):
                continue
            decided = dict(decisions)
            met = [m for m in self.meetings(found[1]) if m[1] not in decided]
            if not met:
                continue
            _, identity, _ = met[0]
            for wins in (True, False):
                heapq.heappush(
                    heap, (found[0], order, tuple(sorted((*decisions, (identity, wins)))))
                )
                order += 1
        return True


def settle(
    a: Arrays, limits: Limits, *, exact_up_to: int = EXACT_MEETINGS,
    program: Continuous | None = None,
) -> Settled:  # fmt: skip
    """The continuous optimum with every meeting settled: see the module. Exactly
    where the first solution has at most ``exact_up_to`` meetings; else by the
    dives alone. ``program``: a problem already set up, whose solver is used where it
    is ``a``'s but for what may be bought and sold (:meth:`Continuous.of`)."""
    large = len(a.held) >= LARGE
    search = _Search(_Account(a, limits, program), 1)
    root = search.solve(())
    if root is None:
        return Settled(None, 1, proven=True)
    if search.best is root:
        return Settled(root[1], 1, proven=True)
    met = len(search.meetings(root[1]))
    exact = met <= exact_up_to
    search.left = 2 ** (met + 2) if exact else LARGE_SOLVES if large else DIVE_SOLVES
    last = search.dive(all_harvest=large)  # in large accounts the harvests won, measured
    if not large:
        search.dive(all_harvest=True)
        search.paired(_twins(a))
    proven = exact and search.search(root)
    if search.best is None:  # nothing settled in time: each meeting loses its cheaper side
        return Settled(_untangle(a, limits, last), len(search.solved), proven=False)
    return Settled(search.best[1], len(search.solved), proven)


@dataclass(frozen=True, slots=True)
class Part:
    """One account of a household, for :func:`settle_household`: its problem in
    weights of the account (identities numbered across the household), its limits, and
    its share of the household's value."""

    a: Arrays
    limits: Limits
    scale: float


@dataclass(frozen=True, slots=True)
class HouseholdSettled:
    """How a household's meetings were settled: identity → True where the harvest wins
    (no account buys it), False where the position does (no account sells its loss
    lots); for each identity that met, the accounts (by position) that sold it at a
    loss and those that bought it when it first met; how many nodes were solved, and
    whether the search finished."""

    decisions: dict[int, bool]
    met: dict[int, tuple[frozenset[int], frozenset[int]]]
    solves: int
    proven: bool
    programs: tuple[Continuous, ...] = ()  # each account's problem, as set up for the search


class _Household:
    """A household's accounts, each its own continuous problem, as the search sees them:
    a node's decisions hold in every account, each account solved again only when a
    decision on an identity it holds changed, and the node's value is the sum of the
    accounts' in weights of the household. A meeting is an identity sold at a loss in one
    account and bought in any account of the household."""

    def __init__(self, parts: Sequence[Part], programs: Sequence[Continuous]) -> None:
        self.parts, self.programs = parts, programs
        self.count = 1 + max(
            (int(p.a.identity.max()) for p in parts if len(p.a.identity)), default=0
        )
        self.held = [frozenset(p.a.identity.tolist()) for p in parts]
        self.cache: list[dict[Decisions, tuple[float, Weights] | None]] = [{} for _ in parts]
        self.seen: dict[int, tuple[frozenset[int], frozenset[int]]] = {}
        self.last: tuple[tuple[Weights, ...], Ints] | None = None  # ways, and their meetings

    def _one(self, k: int, decisions: Decisions) -> tuple[float, Weights] | None:
        mine = tuple(d for d in decisions if d[0] in self.held[k])
        cache = self.cache[k]
        if mine not in cache:
            p = self.parts[k]
            for j, (identity, wins) in enumerate(mine):  # a node one decision up ...
                found = cache.get(mine[:j] + mine[j + 1 :])
                if found is not None and self._keeps(p.a, found[1], identity, harvest=wins):
                    cache[mine] = found  # ... whose optimum this one allows is its optimum
                    return found
            cache[mine] = _solved(self.programs[k], p.a, p.limits, mine)
        return cache[mine]

    @staticmethod
    def _keeps(a: Arrays, way: Weights, identity: int, *, harvest: bool) -> bool:
        """Whether ``way`` already settles ``identity`` so (its trades below half a grid
        step, a solver's noise, count as none)."""
        members = a.identity == identity
        if harvest:
            return not (way.buy[members] > a.unit[members] / 2).any()
        losses = a.lot_loss & members[a.lot_of]
        return not (way.sell[losses] > a.unit[a.lot_of[losses]] / 2).any()

    def solve(self, decisions: Decisions) -> tuple[float, tuple[Weights, ...]] | None:
        total, ways = 0.0, []
        for k, p in enumerate(self.parts):
            found = self._one(k, decisions)
            if found is None:
                return None
            total += p.scale * found[0]
            ways.append(found[1])
        return total, tuple(ways)

    def _sides(self, ways: tuple[Weights, ...]) -> tuple[list[Bools], list[Bools]]:
        """Each account's identities sold at a loss and bought (at least half a grid
        step: below, a solver's noise)."""
        sold, bought = [], []
        for p, way in zip(self.parts, ways, strict=True):
            a = p.a
            half = a.unit / 2
            losses = (way.sell > half[a.lot_of]) & a.lot_loss
            sold.append(np.bincount(a.identity[a.lot_of[losses]], minlength=self.count) > 0)
            bought.append(np.bincount(a.identity[way.buy > half], minlength=self.count) > 0)
        return sold, bought

    def _met(self, ways: tuple[Weights, ...]) -> Ints:
        if self.last is not None and self.last[0] is ways:  # a node is asked whether it
            return self.last[1]  # is clean, then for its meetings
        sold, bought = self._sides(ways)
        met: Ints = np.flatnonzero(np.logical_or.reduce(sold) & np.logical_or.reduce(bought))
        for i in met.tolist():
            if i not in self.seen:
                self.seen[i] = (
                    frozenset(k for k, s in enumerate(sold) if s[i]),
                    frozenset(k for k, b in enumerate(bought) if b[i]),
                )
        self.last = (ways, met)
        return met

    def clean(self, ways: tuple[Weights, ...]) -> bool:
        return not len(self._met(ways))

    def meetings(self, ways: tuple[Weights, ...]) -> list[tuple[float, int, bool]]:
        """As one account's: the tax the loss sales save on the part bought back,
        identity, net seller — amounts in weights of the household."""
        met = self._met(ways)
        if not len(met):
            return []
        g = self.count
        harvested, saved, bought, net = (np.zeros(g) for _ in range(4))
        for p, way in zip(self.parts, ways, strict=True):
            a = p.a
            lot_identity = a.identity[a.lot_of]
            losses = np.where(a.lot_loss, way.sell, 0.0)
            buys = np.bincount(a.identity, weights=way.buy, minlength=g)
            harvested += p.scale * np.bincount(lot_identity, weights=losses, minlength=g)
            saved += p.scale * np.bincount(lot_identity, weights=-a.lot_tax * losses, minlength=g)
            bought += p.scale * buys
            net += p.scale * (buys - np.bincount(lot_identity, weights=way.sell, minlength=g))
        share = np.minimum(bought, harvested) / np.maximum(harvested, 1e-18)
        found = [(float(saved[i] * share[i]), int(i), bool(net[i] < 0)) for i in met.tolist()]
        return sorted(found, reverse=True)


def settle_household(
    parts: Sequence[Part], *, exact_up_to: int = EXACT_MEETINGS
) -> HouseholdSettled:
    """Every meeting across a household's accounts settled together, as :func:`settle`
    settles one account's: the relaxation is each account's optimum with every
    meeting free, the dives and the best-bound search the same, each node's value the
    accounts' summed. An account with no solution even so is left out (its own solve
    says why). Where nothing is settled in time, no decisions: the caller settles the
    meetings one by one."""
    programs = [Continuous(p.a, p.limits) for p in parts]
    free = [program.solve() for program in programs]
    positions = [k for k, way in enumerate(free) if way is not None]
    if not positions:
        return HouseholdSettled({}, {}, len(parts), proven=True, programs=tuple(programs))
    held = [parts[k] for k in positions]
    household = _Household(held, [programs[k] for k in positions])
    for k, position in enumerate(positions):
        way = free[position]
        assert way is not None
        household.cache[k][()] = (value(held[k].a, held[k].limits, way), way)
    search = _Search(household, 1)
    root = search.solve(())

    def settled(decisions: Decisions, solves: int, proven: bool) -> HouseholdSettled:
        met = {
            i: (
                frozenset(positions[k] for k in sold),
                frozenset(positions[k] for k in bought),
            )
            for i, (sold, bought) in household.seen.items()
        }
        return HouseholdSettled(dict(decisions), met, solves, proven, tuple(programs))

    if root is None or search.best is root:
        return settled((), 1, True)
    large = any(len(p.a.held) >= LARGE for p in held)
    met = len(search.meetings(root[1]))
    exact = met <= exact_up_to
    search.left = 2 * met + GREEDY_MORE
    search.greedy()  # each meeting weighed both ways: a first way close to the best
    search.left = 2 ** (met + 2) if exact else LARGE_SOLVES if large else DIVE_SOLVES
    if not exact:  # the search will not run: the dives' ways too
        search.dive(all_harvest=large)
    if not large and not exact:
        search.dive(all_harvest=True)
        twins: dict[int, bool] = {}
        for p in sorted(held, key=lambda p: -p.scale):
            for i, wins in _twins(p.a):
                twins.setdefault(i, wins)
        search.paired(tuple(sorted(twins.items())))
    proven = exact and search.search(root)
    if search.best is None:
        return settled((), len(search.solved), False)
    return settled(search.chosen, len(search.solved), proven)


def _twins(a: Arrays) -> Decisions:
    """Twins among the identities that may meet (a loss lot that may be sold, a
    security that may be bought) — whose securities move together (a correlation of
    at least ``TWIN``), each one's harvest the other's replacement: in each pair the
    one with the more tax to save by harvesting harvests, the other keeps its losses
    and holds the exposure. Greedily, the largest savings first."""
    harvestable = set(a.identity[a.lot_of[a.lot_loss & (a.lot_cap > 0)]].tolist())
    met = sorted(harvestable & set(a.identity[a.buy_cap > 0].tolist()))
    if len(met) < 2:
        return ()
    inside = np.flatnonzero(of_identities(a, met))  # their securities, by identity
    inside = inside[np.argsort(a.identity[inside], kind="stable")]
    covariance = a.covariance[np.ix_(inside, inside)]
    scale = np.sqrt(np.clip(np.diag(covariance), 1e-18, None))
    correlation = covariance / np.outer(scale, scale)
    np.fill_diagonal(correlation, -1.0)
    starts = np.flatnonzero(np.r_[True, np.diff(a.identity[inside]) != 0])
    alike = np.maximum.reduceat(np.maximum.reduceat(correlation, starts, axis=0), starts, axis=1)
    np.fill_diagonal(alike, -1.0)  # an identity's own members are not its twin
    saved = -np.bincount(
        a.identity[a.lot_of], weights=np.where(a.lot_loss, a.lot_tax * a.lot_cap, 0.0),
        minlength=len(a.held),
    )[met]  # fmt: skip
    decisions: dict[int, bool] = {}
    for i in np.argsort(-saved, kind="stable").tolist():
        if met[i] in decisions:
            continue
        free = [k for k in range(len(met)) if k != i and met[k] not in decisions]
        if free:
            twin = max(free, key=lambda k: alike[i, k])
            if alike[i, twin] >= TWIN:
                decisions[met[i]], decisions[met[twin]] = True, False
    return tuple(sorted(decisions.items()))


def _untangle(a: Arrays, limits: Limits, solution: Weights) -> Weights:
    """Each meeting loses the side whose loss costs the objective less: the loss sales
    or the buys."""
    for identity in np.unique(a.identity[clash(a, solution)]):
        members = a.identity == identity
        losses = a.lot_loss & members[a.lot_of]
        ways = (
            Weights(solution.buy, np.where(losses, 0.0, solution.sell)),
            Weights(np.where(members, 0.0, solution.buy), solution.sell),
        )
        solution = min(ways, key=lambda way: value(a, limits, way))
    return solution
