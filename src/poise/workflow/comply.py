"""Compliance, the shell: the firm's rule files read, and the rules run when they must.

- **On every proposal as it is made**: a household's plan is checked where it is made
  (:func:`check_results` is pure: a run's worker process does it beside the optimiser),
  and :func:`keep_made` keeps the findings with the proposal, moves it to ``blocked``
  (a block stands) or ``pending``, and appends its ``proposal.made`` entry to the
  ledger — in the transaction that keeps the proposal.
- **Again at release**, against the prices then (:func:`recheck`): the proposal's
  trades applied to the holdings as they stand now.
- **Over every account's holdings** (:func:`check_holdings`, ``poise comply
  --holdings``): breaches the markets made, not trades; each new one raises a monitor
  request.

The rules in force for an account are the firm's files layered firm → model →
household → account (:class:`~poise.comply.rulesets.RuleBook`), read from the folder
``POISE_RULES_DIR``, or poise's own default when none is set. Where a rule has a twin
in the optimiser, the problem is built with it (:func:`account_terms`,
:func:`problem_terms`, :func:`scenario_terms`), so what is optimised and what is
checked come from the same objects.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from poise.audit.ledger import Record, append_many
from poise.comply import twins
from poise.comply.findings import Finding
from poise.comply.rules import Rule, check
from poise.comply.rules.data import PriceMoved
from poise.comply.rulesets import RuleBook, RuleSpec
from poise.comply.views import Client, Portfolio, TradeRow, nothing, of_household, portfolio
from poise.domain.accounts import Account, Household, model_of
from poise.domain.approvals import Act, Approval, FindingState, Policy, Status, decide
from poise.domain.clients import ClientProfile, RiskTolerance
from poise.domain.errors import ValidationError
from poise.domain.money import ZERO
from poise.domain.recent import WashWindow
from poise.domain.relief import Term
from poise.optimize.problem import Problem
from poise.optimize.risk import RiskModel
from poise.optimize.trades import LotSale, Proposal, Side, Trade, TradeReason
from poise.store import repo
from poise.store.repo import FindingToKeep, Unit
from poise.workflow.risks import risks

if TYPE_CHECKING:
    from poise.optimize.scenarios import Scenario
    from poise.settings import Settings
    from poise.workflow.households import Firm, HouseholdBook, Reference

__all__ = [
    "DEFAULT_RULES",
    "AccountRules",
    "Checked",
    "HoldingsCheck",
    "Made",
    "account_rules",
    "account_terms",
    "check_holdings",
    "check_proposals",
    "check_results",
    "client_of",
    "holdings_findings",
    "keep_made",
    "load_rules",
    "problem_terms",
    "recheck",
    "rules_of_account",
    "scenario_terms",
    "spec_json",
    "status_of",
]

DEFAULT_RULES = "firm.yaml"  # poise's own firm rules, inside poise.comply


def load_rules(settings: Settings) -> RuleBook:
    """The firm's rule book: every ``.yaml`` file under ``POISE_RULES_DIR`` (named by
    its path there), or poise's default firm rules when none is set. Every file is
    validated as it is read; errors name the file, the line and the field."""
    folder = settings.rules_dir
    if folder is None:
        text = resources.files("poise.comply").joinpath(DEFAULT_RULES).read_text("utf-8")
        return RuleBook.of_texts([(f"poise:{DEFAULT_RULES}", text)])
    if not folder.is_dir():
        raise ValidationError(f"POISE_RULES_DIR {folder}: no such folder")
    paths = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not paths:
        raise ValidationError(f"POISE_RULES_DIR {folder}: no rule files (*.yaml) in it")
    return RuleBook.of_texts(
        [(p.relative_to(folder).as_posix(), p.read_text("utf-8")) for p in paths]
    )


_CAUTION = {tolerance: n for n, tolerance in enumerate(RiskTolerance)}  # the most careful first


def client_of(profiles: Iterable[ClientProfile]) -> Client | None:
    """What suitability asks of a household's clients, together: the most careful risk
    tolerance among them, and every exclusion any of them made (None: no profile)."""
    found = list(profiles)
    if not found:
        return None
    return Client(
        risk_tolerance=min((p.risk_tolerance for p in found), key=_CAUTION.__getitem__),
        exclusions=frozenset().union(*(p.exclusions for p in found)),
        excluded_tags=frozenset().union(*(p.esg for p in found)),
    )


def _where(household: Household, account: Account) -> dict[str, str | None]:
    return {
        "model_id": model_of(household, account),
        "household_id": household.household_id,
        "account_id": account.account_id,
    }


def account_rules(book: RuleBook, household: Household, account: Account) -> list[Rule]:
    """The rules in force for ``account``: the firm's, its model's, its household's and
    its own."""
    return book.rules(**_where(household, account))


# ── the optimiser's twins ────────────────────────────────────────────────────


def account_terms(
    book: RuleBook | None, household: Household, account: Account, client: Client | None
) -> Account:
    """``account`` with the restrictions and cash reserve its rules ask for."""
    if book is None:
        return account
    return twins.account_terms(account_rules(book, household, account), account, client)


def problem_terms(book: RuleBook | None, household: Household, problem: Problem) -> Problem:
    """``problem`` with its holdings at a single-security limit not to be bought."""
    if book is None:
        return problem
    return twins.problem_terms(account_rules(book, household, problem.account), problem)


def scenario_terms(
    book: RuleBook | None, household: Household, account: Account, scenario: Scenario
) -> Scenario:
    """``scenario`` with the tax budget, turnover limit and smallest trade the account's
    rules ask for, where they are stricter."""
    if book is None:
        return scenario
    rules = account_rules(book, household, account)
    return replace(scenario, settings=twins.settings(rules, scenario.settings))


# ── checking a proposal as it is made ────────────────────────────────────────


def _risk(reference: Reference, ids: Sequence[str]) -> RiskModel | None:
    if not ids:
        return None
    return risks(reference.history).model(ids)


def _judge(
    book: RuleBook,
    household: Household,
    accounts: Sequence[Account],
    views: tuple[Portfolio, Portfolio, tuple[TradeRow, ...]],
    *,
    release: Mapping[str, Decimal] | None = None,
) -> list[Finding]:
    """The findings of each account's rules on the household's portfolios: accounts
    under the same files share one check; a finding about an account is kept only by
    that account's rules, one about none (the household's) by any; each once. At
    release, the price-move rules compare with ``release``, the prices then."""
    groups: dict[tuple[str, ...], list[Account]] = defaultdict(list)
    for account in accounts:
        groups[book.key(**_where(household, account))].append(account)
    before, after, trades = views
    found: list[Finding] = []
    seen: set[tuple[Any, ...]] = set()
    for members in groups.values():
        mine = {a.account_id for a in members}
        rules = account_rules(book, household, members[0])
        if release is not None:
            rules = [r.at_release(release) if isinstance(r, PriceMoved) else r for r in rules]
        for finding in check(rules, before, after, trades):
            if finding.accounts and not mine.intersection(finding.accounts):
                continue
            key = (finding.rule_id, finding.accounts, finding.securities, finding.explanation)
            if key not in seen:
                seen.add(key)
                found.append(finding)
    return found


def check_results(
    book: RuleBook,
    reference: Reference,
    household: HouseholdBook,
    results: Sequence[tuple[Problem, Proposal]],
    window: WashWindow | None = None,
) -> list[Finding]:
    """The rules' findings on a household's proposal as it is made — each account's
    problem and the proposal made for it (``window``: the household's wash-sale window,
    where the caller has it). Pure: a run's worker does it."""
    from poise.workflow.households import household_window  # noqa: PLC0415

    if not results:
        return []
    ids = sorted({h.security_id for problem, _ in results for h in problem.holdings})
    views = of_household(
        results,
        household_id=household.household_id,
        client=client_of(household.clients),
        wash=household_window(reference, household) if window is None else window,
        as_of=reference.as_of,
        price_times=reference.price_times,
        risk=_risk(reference, ids),
    )
    return _judge(book, household.household, [p.account for p, _ in results], views)


def status_of(findings: Sequence[FindingToKeep], *, prepared_by: str, at: datetime) -> Status:
    """Where a proposal just made and checked stands: the approval machine's answer."""
    state = Approval(
        Status.PROPOSED,
        prepared_by,
        ZERO,
        at,
        tuple(FindingState(f.finding_id, f.blocks) for f in findings),
    )
    from poise.workflow.approvals import SYSTEM_ACTOR  # noqa: PLC0415 (it calls this module)

    return decide(state, Act.CHECK, who=SYSTEM_ACTOR, at=at, policy=Policy()).after.status


@dataclass(frozen=True, slots=True)
class Made:
    """A proposal just kept, as its ledger entry and its check need it: the unit
    approved (an account's proposal of its own, or a household's), who prepared it, its
    accounts' proposals and trades, and the rules' findings (None: not checked)."""

    unit: Unit
    prepared_by: str | None
    parts: Mapping[str, str]  # account → its proposal's id
    trades: Sequence[tuple[str, Trade]]  # (account, trade)
    findings: Sequence[Finding] | None
    rules: str = ""  # the rule book's digest

    def data(self, status: Status) -> dict[str, Any]:
        """What the ledger entry's hash is of: ids, trades and the findings' essentials."""
        return {
            "proposal_id": self.unit.proposal_id,
            "household": self.unit.household_id,
            "accounts": dict(sorted(self.parts.items())),
            "trades": [
                [a, t.security_id, t.side.value, str(t.quantity), str(t.price)]
                for a, t in self.trades
            ],
            "status": status.value,
            "rules": self.rules,
            "findings": [_exact(f.as_json()) for f in self.findings or ()],
        }


def _exact(value: Any) -> Any:
    """``value`` with every float (a weight, a volatility) as its shortest exact text:
    the ledger hashes no float, whose text differs between machines' printers."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(v) for v in value]
    return value


def keep_made(connection: sa.Connection, made: Sequence[Made], *, at: datetime) -> list[Status]:
    """In the transaction that kept them: each proposal's findings and the status they
    give it (``blocked`` or ``pending``; one not checked stays ``proposed``), and one
    ``proposal.made`` entry each in the ledger. Each one's status, in order."""
    from poise.workflow.approvals import findings_of  # noqa: PLC0415 (it calls this module)

    checked = []
    records = []
    statuses = []
    for m in made:
        status = Status.PROPOSED
        if m.findings is not None:
            kept = findings_of(m.findings)
            status = status_of(kept, prepared_by=m.prepared_by or repo.SYSTEM, at=at)
            checked.append((m.unit, status, kept))
        statuses.append(status)
        blocks = sum(f.blocks for f in m.findings or ())
        warns = len(m.findings or ()) - blocks
        records.append(
            Record(
                actor=m.prepared_by or repo.SYSTEM,
                action="proposal.made",
                subject=m.unit.proposal_id,
                data=m.data(status),
                reason=(
                    f"{status.value}: {blocks} block and {warns} warning findings"
                    if m.findings is not None
                    else "not checked"
                ),
                at=at,
            )
        )
    repo.keep_checked(connection, checked=checked)
    append_many(connection, records)
    return statuses


# ── checking again: a stored proposal against the store as it stands ────────


def _stored_trade(row: Mapping[str, Any]) -> Trade:
    """A stored trade as the proposal made it: at the price then."""
    lots = tuple(
        LotSale(
            lot["lot_id"],
            Decimal(lot["quantity"]),
            Decimal(lot["basis"]),
            Decimal(lot["proceeds"]),
            Term(lot["term"]),
        )
        for lot in row["lots"]
    )
    return Trade(
        row["security_id"],
        Side(row["side"]),
        Decimal(row["quantity"]),
        Decimal(row["price"]),
        TradeReason(row["reason"]),
        lots,
    )


def _holdings_views(
    reference: Reference,
    household: HouseholdBook,
    trades: Sequence[tuple[str, Mapping[str, Any]]],
) -> tuple[Portfolio, Portfolio, tuple[TradeRow, ...]]:
    """Before and after ``trades`` (account, stored trade) on the household's holdings
    as they stand, at the prices now (a trade's own where none is believed now); the
    trades as proposed, at the prices then."""
    from poise.workflow.households import household_window  # noqa: PLC0415

    positions: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for lot in household.lots:
        positions[(lot.account_id, lot.security_id)] += lot.quantity
    prices = dict(reference.prices)
    for _, row in trades:
        prices.setdefault(row["security_id"], Decimal(row["price"]))
    held = {s for (_, s), q in positions.items() if q}
    missing = sorted(held - prices.keys())
    if missing:
        raise ValidationError(f"no price believed for {', '.join(missing)}: cannot check")
    after = dict(positions)
    cash = {a.account_id: a.cash for a in household.accounts}
    rows: list[TradeRow] = []
    for account_id, row in trades:
        if account_id not in cash:
            raise ValidationError(
                f"account {account_id} of the proposal is not in household"
                f" {household.household_id}: cannot check"
            )
        trade = _stored_trade(row)
        after[(account_id, trade.security_id)] = (
            after.get((account_id, trade.security_id), ZERO) + trade.signed_quantity
        )
        cash[account_id] -= trade.signed_quantity * trade.price
        rows.append(TradeRow(account_id, trade, reference.securities[trade.security_id]))
    ids = sorted({s for (_, s) in after} | {s for (_, s) in positions})
    shared: dict[str, Any] = {
        "household_id": household.household_id,
        "securities": reference.securities,
        "prices": prices,
        "client": client_of(household.clients),
        "wash": household_window(reference, household),
        "as_of": reference.as_of,
        "price_times": reference.price_times,
        "risk": _risk(reference, [s for s in ids if s in reference.securities]),
    }
    accounts = household.accounts
    return (
        portfolio(
            accounts=[(a.account_id, a.registration, a.cash) for a in accounts],
            positions=positions,
            **shared,
        ),
        portfolio(
            accounts=[(a.account_id, a.registration, cash[a.account_id]) for a in accounts],
            positions=after,
            **shared,
        ),
        tuple(rows),
    )


def _stored(connection: sa.Connection, proposal_id: str) -> tuple[Unit, list[dict[str, Any]]]:
    """A proposal's unit and its accounts' proposals, whole."""
    unit = repo.lock_unit(connection, proposal_id=proposal_id, lock=False)
    if unit.household:
        parts = repo.household_proposal(connection, proposal_id=proposal_id).accounts
    else:
        parts = (proposal_id,)
    if unit.household_id is None:
        raise ValidationError(f"{proposal_id}: its account belongs to no household")
    return unit, [repo.proposal(connection, proposal_id=p) for p in parts]


def _load(engine: sa.Engine, household_ids: Collection[str], at: datetime) -> Firm:
    from poise.monitor.plausible import LOOKBACK  # noqa: PLC0415
    from poise.settings import Settings  # noqa: PLC0415
    from poise.workflow.households import load_firm  # noqa: PLC0415
    from poise.workflow.monitor import price_check  # noqa: PLC0415

    return load_firm(
        engine,
        as_of=at,
        lookback=LOOKBACK,
        check=price_check(Settings()),
        household_ids=sorted(household_ids),
    )


def _again(
    book: RuleBook, firm: Firm, unit: Unit, records: Sequence[Mapping[str, Any]]
) -> list[Finding]:
    household = firm.books[unit.household_id or ""]
    trades = [(r["account_id"], t) for r in records for t in r["trades"]]
    views = _holdings_views(firm.reference, household, trades)
    mine = {r["account_id"] for r in records}
    accounts = [a for a in household.accounts if a.account_id in mine]
    return _judge(book, household.household, accounts, views, release=firm.reference.prices)


def recheck(
    engine: sa.Engine,
    *,
    proposal_id: str,
    book: RuleBook,
    at: datetime | None = None,
) -> list[Finding]:
    """The rules' findings on a stored proposal's trades applied to its household's
    holdings as they stand at ``at``, at the prices then — what release checks."""
    at = at or datetime.now(UTC)
    with engine.connect() as connection:
        unit, records = _stored(connection, proposal_id)
    return _again(book, _load(engine, [unit.household_id or ""], at), unit, records)


def holdings_findings(
    book: RuleBook, reference: Reference, household: HouseholdBook
) -> list[Finding]:
    """The rules' findings on a household's holdings alone (pure): every breach counts,
    as if bought today, so what the markets made is found."""
    views = _holdings_views(reference, household, [])
    _, after, trades = views
    return _judge(book, household.household, household.accounts, (nothing(after), after, trades))


# ── the commands' work: proposals checked again, and every account's holdings ─


@dataclass(frozen=True, slots=True)
class Checked:
    """A stored proposal checked again: what the rules find now, and — where it was
    still waiting (proposed, blocked, pending) — the approval machine's outcome of
    keeping them as its findings (None: only reported)."""

    proposal_id: str
    status: str
    findings: tuple[Finding, ...]
    kept: bool


def check_proposals(
    engine: sa.Engine,
    *,
    proposal_ids: Sequence[str],
    book: RuleBook,
    policy: Policy,
    at: datetime | None = None,
) -> list[Checked]:
    """Each proposal's trades checked against the rules on the holdings and prices at
    ``at`` (now); a proposal still waiting keeps the findings as its own (blocked or
    pending again, with a ``proposal.check`` ledger entry), any other is reported."""
    from poise.workflow.approvals import check, findings_of  # noqa: PLC0415

    at = at or datetime.now(UTC)
    with engine.connect() as connection:
        stored = [_stored(connection, p) for p in proposal_ids]
    firm = _load(engine, {unit.household_id or "" for unit, _ in stored}, at)  # read once
    done = []
    for proposal_id, (unit, records) in zip(proposal_ids, stored, strict=True):
        found = tuple(_again(book, firm, unit, records))
        with engine.connect() as connection:
            status = repo.approval_state(connection, unit=unit).status
        if unit.part_of is None and status in (Status.PROPOSED, Status.BLOCKED, Status.PENDING):
            outcome = check(
                engine, proposal_id=proposal_id, findings=findings_of(found), policy=policy, at=at
            )
            done.append(Checked(proposal_id, outcome.status.value, found, True))
        else:
            done.append(Checked(proposal_id, status.value, found, False))
    return done


@dataclass(frozen=True, slots=True)
class HoldingsCheck:
    """What the daily check of holdings found: each household's breaches, and the
    monitor requests raised for the new ones (an account's breach already raised today
    is not raised again)."""

    households: int
    findings: Mapping[str, tuple[Finding, ...]]  # household → its breaches
    raised: tuple[str, ...]  # request ids
    failed: Mapping[str, str]  # household → why it could not be checked


def check_holdings(
    engine: sa.Engine,
    *,
    book: RuleBook,
    settings: Settings,
    at: datetime | None = None,
    household_ids: Sequence[str] | None = None,
) -> HoldingsCheck:
    """Every account's holdings as they stand at ``at``, checked against its rules —
    the breaches markets made, not trades: the firm read once; each account in breach
    gets a monitor request (reason ``compliance``, the findings in its figures), and
    the ledger a ``comply.breach`` entry for each request raised."""
    from poise.monitor.plausible import LOOKBACK  # noqa: PLC0415
    from poise.monitor.triggers import Reason, RebalanceRequest  # noqa: PLC0415
    from poise.workflow.households import load_firm  # noqa: PLC0415
    from poise.workflow.monitor import price_check  # noqa: PLC0415

    at = at or datetime.now(UTC)
    firm = load_firm(
        engine,
        as_of=at,
        lookback=LOOKBACK,
        check=price_check(settings),
        household_ids=household_ids,
    )
    found: dict[str, tuple[Finding, ...]] = {}
    failed: dict[str, str] = {}
    requests: list[RebalanceRequest] = []
    for household_id, household in firm.books.items():
        try:
            breaches = tuple(holdings_findings(book, firm.reference, household))
        except ValidationError as e:
            failed[household_id] = str(e)
            continue
        if not breaches:
            continue
        found[household_id] = breaches
        by_account: dict[str | None, list[Finding]] = defaultdict(list)
        for f in breaches:
            for account_id in f.accounts or (None,):
                by_account[account_id].append(f)
        for account_id, mine in by_account.items():
            requests.append(
                RebalanceRequest(
                    account_id=account_id,
                    household_id=household_id if account_id is None else None,
                    reasons=(Reason.COMPLIANCE,),
                    as_of=at,
                    figures={
                        "findings": [
                            {"rule_id": f.rule_id, "severity": f.severity.value,
                             "explanation": f.explanation}
                            for f in mine
                        ]
                    },
                )
            )  # fmt: skip
    raised: list[str] = []
    with engine.execution_options(writes=True).begin() as connection:
        stored = repo.stored_request_ids(connection, ids=[r.request_id for r in requests])
        new = [r for r in requests if r.request_id not in stored]
        repo.save_requests(
            connection, requests=[r.to_payload() for r in new], received_at=datetime.now(UTC)
        )
        append_many(
            connection,
            [
                Record(
                    actor=repo.SYSTEM,
                    action="comply.breach",
                    subject=r.request_id,
                    data={"request": r.request_id, "rules": book.digest,
                          "findings": r.figures["findings"]},
                    reason="; ".join(f["explanation"] for f in r.figures["findings"]),
                    at=at,
                )
                for r in new
            ],
        )  # fmt: skip
        raised = [r.request_id for r in new]
    return HoldingsCheck(len(firm.books), found, tuple(raised), failed)


# ── the rules as they apply to an account, for people ───────────────────────


@dataclass(frozen=True, slots=True)
class AccountRules:
    """The rule files that apply to an account, firm first, and the rules in force."""

    account_id: str
    files: tuple[str, ...]
    specs: tuple[RuleSpec, ...]


def rules_of_account(engine: sa.Engine, *, account_id: str, book: RuleBook) -> AccountRules:
    """The rules in force for ``account_id``: its firm's, model's, household's and own
    layers composed."""
    with engine.connect() as connection:
        account = repo.account(connection, account_id=account_id)
        household = next(
            h for h in repo.households(connection) if h.household_id == account.household_id
        )
    where = _where(household, account)
    return AccountRules(account_id, book.key(**where), book.ruleset(**where).specs)


def _plain(value: Any) -> Any:
    """A rule's parameter as JSON: sets sorted, money as text, days as a number."""
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.days
    return value


def spec_json(spec: RuleSpec) -> dict[str, Any]:
    """A rule in force, as the API and the pages show it: each field with the file and
    line that set it."""
    return {
        "rule_id": spec.rule_id,
        "kind": spec.kind,
        "severity": spec.severity.value,
        "enabled": spec.enabled,
        "params": {k: _plain(v) for k, v in spec.params.items()},
        "set_at": {k: str(w) for k, w in spec.set_at.items()},
        "may_loosen": sorted(spec.allow_loosen),
    }
