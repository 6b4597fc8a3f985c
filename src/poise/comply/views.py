"""The portfolio a rule looks at: a household's (or one account's) holdings before
and after a proposal, and the proposal's trades.

A :class:`Portfolio` is one row per account and security held, in arrays so a rule
over every holding is one numpy expression: the value in dollars and the weight in
its account and in the household are float64 (for comparing against a limit); the
quantity and the price stay Decimal, and :meth:`Portfolio.exact_value` gives a
holding's value exactly, for a finding. Built from the engine's own objects — a
:class:`~poise.optimize.problem.Problem` and its
:class:`~poise.optimize.trades.Proposal` (:func:`of_account`), or a household's
(:func:`of_household`) — the after-portfolio is the before one with the trades
applied and each account's cash the proposal's ``cash_after``.

What the security master and the client profile do not hold yet comes in beside
them: an issuer, a sector and an average daily volume for a security
(:class:`Reference`: by default the issuer is the security itself and the sector its
sub-class, else its asset class), and whether a client may hold complex products
(:class:`Client`). Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from poise.domain.accounts import Registration
from poise.domain.clients import RiskTolerance
from poise.domain.money import ZERO
from poise.domain.recent import WashWindow
from poise.domain.securities import Security
from poise.optimize.problem import Problem
from poise.optimize.risk import RiskModel
from poise.optimize.trades import Proposal, Trade

__all__ = [
    "AccountView",
    "Client",
    "Portfolio",
    "Reference",
    "TradeRow",
    "group_key",
    "nothing",
    "of_account",
    "of_household",
    "portfolio",
]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
GROUPS = ("security", "issuer", "sector", "asset_class")


@dataclass(frozen=True, slots=True)
class Reference:
    """What a rule needs of a security that the security master does not hold yet:
    its issuer, its sector, and its average daily volume in shares."""

    issuer: Mapping[str, str] = field(default_factory=dict)
    sector: Mapping[str, str] = field(default_factory=dict)
    adv: Mapping[str, Decimal] = field(default_factory=dict)

    def issuer_of(self, security: Security) -> str:
        return self.issuer.get(security.security_id, security.security_id)

    def sector_of(self, security: Security) -> str:
        return self.sector.get(security.security_id, security.sub_class or security.asset_class)


@dataclass(frozen=True, slots=True)
class Client:
    """What suitability asks of the household's client: the risk tolerance and the
    exclusions of their profile, and whether they may hold complex products (leveraged
    or inverse funds, options, structured products) — a flag no profile holds yet."""

    risk_tolerance: RiskTolerance | None = None
    complex_eligible: bool = False
    exclusions: frozenset[str] = frozenset()  # security ids
    excluded_tags: frozenset[str] = frozenset()  # ESG or faith-based screens


@dataclass(frozen=True, slots=True)
class AccountView:
    account_id: str
    registration: Registration
    cash: Decimal
    value: Decimal  # positions plus cash


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One trade of the proposal, in the account that makes it."""

    account_id: str
    trade: Trade
    security: Security

    @property
    def value(self) -> Decimal:
        return self.trade.value


@dataclass(frozen=True, slots=True, eq=False)
class Portfolio:
    """Holdings by account and security at one moment, with what a rule needs to
    judge them; one row a holding (see the module)."""

    household_id: str
    accounts: tuple[AccountView, ...]
    securities: Mapping[str, Security]
    prices: Mapping[str, Decimal]
    row_account: Ints  # index into ``accounts``
    row_security: tuple[str, ...]
    quantity: tuple[Decimal, ...]
    value: Floats  # dollars
    weight: Floats  # of its account's value
    household_weight: Floats  # of the household's value
    cash_weight: Floats  # each account's cash, of its value
    codes: Mapping[str, tuple[Ints, tuple[str, ...]]]  # GROUPS → row codes, their names
    client: Client = field(default_factory=Client)
    reference: Reference = field(default_factory=Reference)
    wash: WashWindow | None = None  # the household's wash-sale window, where known
    as_of: datetime | None = None  # when the prices are judged
    price_times: Mapping[str, datetime] = field(default_factory=dict)
    risk: RiskModel | None = None  # the risk model, for the portfolio's volatility

    @property
    def total(self) -> Decimal:
        """The household's value: every account's positions and cash."""
        return sum((a.value for a in self.accounts), ZERO)

    def account_of(self, row: int) -> str:
        return self.accounts[int(self.row_account[row])].account_id

    def exact_value(self, row: int) -> Decimal:
        return self.quantity[row] * self.prices[self.row_security[row]]


def portfolio(
    *,
    household_id: str,
    accounts: Sequence[tuple[str, Registration, Decimal]],
    positions: Mapping[tuple[str, str], Decimal],
    securities: Mapping[str, Security],
    prices: Mapping[str, Decimal],
    client: Client | None = None,
    reference: Reference | None = None,
    wash: WashWindow | None = None,
    as_of: datetime | None = None,
    price_times: Mapping[str, datetime] | None = None,
    risk: RiskModel | None = None,
) -> Portfolio:
    """A portfolio of ``accounts`` (id, registration, cash) holding ``positions``
    ((account, security) → quantity; a zero quantity is not a holding)."""
    reference = reference or Reference()
    index = {a[0]: i for i, a in enumerate(accounts)}
    held = [(a, s, q) for (a, s), q in positions.items() if q]
    row_account = np.fromiter((index[a] for a, _, _ in held), dtype=np.int64, count=len(held))
    row_security = tuple(s for _, s, _ in held)
    quantity = tuple(q for _, _, q in held)
    exact = [q * prices[s] for _, s, q in held]
    account_value = [cash for _, _, cash in accounts]
    for (a, _, _), v in zip(held, exact, strict=True):
        account_value[index[a]] += v
    value = np.array([float(v) for v in exact], dtype=np.float64)
    totals = np.array([float(v) for v in account_value], dtype=np.float64)
    household = float(totals.sum())
    safe = np.where(totals != 0.0, totals, 1.0)
    weight = value / safe[row_account] if held else np.zeros(0)
    cash = np.array([float(c) for _, _, c in accounts], dtype=np.float64)
    codes = _Codes(row_security, securities, reference)
    return Portfolio(
        household_id=household_id,
        accounts=tuple(
            AccountView(a, registration, cash_, account_value[i])
            for i, (a, registration, cash_) in enumerate(accounts)
        ),
        securities=securities,
        prices=prices,
        row_account=row_account,
        row_security=row_security,
        quantity=quantity,
        value=value,
        weight=weight,
        household_weight=value / household if household else np.zeros(len(held)),
        cash_weight=cash / safe,
        codes=codes,
        client=client or Client(),
        reference=reference,
        wash=wash,
        as_of=as_of,
        price_times=price_times or {},
        risk=risk,
    )


@dataclass(frozen=True, slots=True)
class _Table:
    """Every security of a security master as a number, and its member of each group
    as a number, with the members' names: worked out once for a security master and
    reference (a run shares them)."""

    securities: Mapping[str, Security]
    reference: Reference
    index: dict[str, int]
    groups: tuple[tuple[Ints, tuple[str, ...]], ...]  # in the order of GROUPS

    @classmethod
    def of(cls, securities: Mapping[str, Security], reference: Reference) -> _Table:
        groups = []
        for group in GROUPS:
            names: dict[str, int] = {}
            codes = np.fromiter(
                (names.setdefault(group_key(group, s, reference), len(names))
                 for s in securities.values()),
                dtype=np.int64,
                count=len(securities),
            )  # fmt: skip
            groups.append((codes, tuple(names)))
        return cls(securities, reference, {s: i for i, s in enumerate(securities)}, tuple(groups))


_TABLES: dict[tuple[int, int], _Table] = {}


def _table(securities: Mapping[str, Security], reference: Reference) -> _Table:
    key = (id(securities), id(reference))
    kept = _TABLES.get(key)
    if kept is None or kept.securities is not securities or kept.reference is not reference:
        if len(_TABLES) > 64:
            _TABLES.clear()
        kept = _TABLES[key] = _Table.of(securities, reference)
    return kept


class _Codes(Mapping[str, tuple[Ints, tuple[str, ...]]]):
    """Each row's member of a group (``GROUPS``) as a code, and the members' names —
    worked out the first time a rule asks for that group, then kept."""

    def __init__(
        self, rows: tuple[str, ...], securities: Mapping[str, Security], reference: Reference
    ) -> None:
        self.rows, self.securities, self.reference = rows, securities, reference
        self.made: dict[str, tuple[Ints, tuple[str, ...]]] = {}
        self.numbers: Ints | None = None  # each row's security, as the table numbers it

    def __getitem__(self, group: str) -> tuple[Ints, tuple[str, ...]]:
        found = self.made.get(group)
        if found is None:
            if group not in GROUPS:
                raise KeyError(group)
            table = _table(self.securities, self.reference)
            if self.numbers is None:
                index = table.index
                self.numbers = np.fromiter(
                    (index[s] for s in self.rows), dtype=np.int64, count=len(self.rows)
                )
            codes, names = table.groups[GROUPS.index(group)]
            members, rows = np.unique(codes[self.numbers], return_inverse=True)
            found = self.made[group] = (
                rows.astype(np.int64).reshape(-1),
                tuple(names[m] for m in members.tolist()),
            )
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(GROUPS)

    def __len__(self) -> int:
        return len(GROUPS)

    def forget(self) -> None:
        """Work each group out again when next asked (for timing it)."""
        self.made.clear()
        self.numbers = None


def nothing(like: Portfolio) -> Portfolio:
    """A portfolio of ``like``'s accounts holding nothing: the ``before`` of a check of
    holdings alone, so that every breach in them counts as new."""
    return portfolio(
        household_id=like.household_id,
        accounts=[(a.account_id, a.registration, ZERO) for a in like.accounts],
        positions={},
        securities=like.securities,
        prices=like.prices,
        client=like.client,
        reference=like.reference,
        wash=like.wash,
        as_of=like.as_of,
        price_times=like.price_times,
        risk=like.risk,
    )


def group_key(group: str, security: Security, reference: Reference) -> str:
    """The member of ``group`` (``GROUPS``) that ``security`` belongs to."""
    if group == "security":
        return security.security_id
    if group == "issuer":
        return reference.issuer_of(security)
    if group == "sector":
        return reference.sector_of(security)
    return security.asset_class


def of_household(
    results: Sequence[tuple[Problem, Proposal]],
    *,
    household_id: str = "",
    client: Client | None = None,
    reference: Reference | None = None,
    wash: WashWindow | None = None,
    as_of: datetime | None = None,
    price_times: Mapping[str, datetime] | None = None,
    risk: RiskModel | None = None,
) -> tuple[Portfolio, Portfolio, tuple[TradeRow, ...]]:
    """Before, after and the trades of a household's proposal: each account's problem
    and the proposal made for it (a ``HouseholdProposal``'s ``accounts``, as pairs)."""
    securities: dict[str, Security] = {}
    prices: dict[str, Decimal] = {}
    before: dict[tuple[str, str], Decimal] = {}
    after: dict[tuple[str, str], Decimal] = {}
    rows: list[TradeRow] = []
    for problem, proposal in results:
        a = problem.account.account_id
        for h in problem.holdings:
            securities[h.security_id] = h.security
            prices[h.security_id] = h.price
            before[(a, h.security_id)] = h.quantity
            after[(a, h.security_id)] = h.quantity
        for t in proposal.trades:
            after[(a, t.security_id)] += t.signed_quantity
            rows.append(TradeRow(a, t, securities[t.security_id]))
    household = household_id or (results[0][0].account.household_id if results else "")
    shared = {
        "household_id": household,
        "securities": securities,
        "prices": prices,
        "client": client,
        "reference": reference,
        "wash": wash,
        "as_of": as_of,
        "price_times": price_times,
    }
    accounts_before = [(p.account.account_id, p.account.registration, p.cash) for p, _ in results]
    accounts_after = [
        (p.account.account_id, p.account.registration, q.cash_after) for p, q in results
    ]
    return (
        portfolio(accounts=accounts_before, positions=before, **shared),  # type: ignore[arg-type]
        portfolio(accounts=accounts_after, positions=after, **shared),  # type: ignore[arg-type]
        tuple(rows),
    )


def of_account(
    problem: Problem,
    proposal: Proposal,
    *,
    client: Client | None = None,
    reference: Reference | None = None,
    wash: WashWindow | None = None,
    as_of: datetime | None = None,
    price_times: Mapping[str, datetime] | None = None,
    risk: RiskModel | None = None,
) -> tuple[Portfolio, Portfolio, tuple[TradeRow, ...]]:
    """Before, after and the trades of one account's proposal."""
    return of_household(
        [(problem, proposal)],
        client=client,
        reference=reference,
        wash=wash,
        as_of=as_of,
        price_times=price_times,
        risk=risk,
    )
