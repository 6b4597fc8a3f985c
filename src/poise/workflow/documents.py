"""The JSON documents poise shows, in one shape whoever shows them: a command's
``--json`` and the API's answer are made by the same functions here.

Owns: the one JSON convention (docs/operations.md#json-output) — money, prices and
quantities exact, as decimal strings; ratios rounded to :data:`RATIO_PLACES` places;
dates and times ISO 8601; enums their value (:func:`jsonable`, :func:`ratio`) — and
the documents of a proposal (:func:`proposal_json`; an unsaved one through
:func:`record_of`), an account's scenarios side by side (:func:`scenarios_json`), a
household's proposal (:func:`household_json`), a rebalance request
(:func:`request_json`), where a proposal stands in approval (:func:`standing_json`),
what an act of approval came to (:func:`outcome_json`, :func:`bulk_json`), a
firm-wide run (:func:`run_json`), a kept backtest
(:func:`backtest_json`), a file's load (:func:`ingest_report_json`), the history of
loads (:func:`ingested_file_json`) and a quarantined row (:func:`quarantined_json`).
May not touch: the store or the bus (the callers read the records and hand them in),
nor load a heavy module: every command imports this when it starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poise.optimize.scenarios import Tradeoff
    from poise.optimize.trades import Proposal
    from poise.store.repo import BacktestRecord, HouseholdProposalRecord, RebalanceRun
    from poise.store.repo.files import IngestedFile, Quarantined
    from poise.workflow.approvals import Bulk, Choices, Outcome, Standing
    from poise.workflow.ingest import FileReport
    from poise.workflow.rebalance import Proposed

__all__ = [
    "MONEY",
    "RATIOS",
    "RATIO_PLACES",
    "TRADEOFF_RATIOS",
    "backtest_json",
    "bulk_json",
    "household_json",
    "ingest_report_json",
    "ingested_file_json",
    "jsonable",
    "outcome_json",
    "proposal_json",
    "quarantined_json",
    "ratio",
    "record_of",
    "request_json",
    "run_json",
    "scenarios_json",
    "standing_json",
]

# ── the convention ───────────────────────────────────────────────────────────

RATIO_PLACES = 6  # weights, drifts, tracking errors and fractions in JSON: six places


def ratio(value: Decimal | float | None) -> float | None:
    """A ratio as JSON shows it: a number rounded to :data:`RATIO_PLACES` places (28
    digits of a Decimal quotient, or a float's last bits, are noise to a reader)."""
    return None if value is None else round(float(value), RATIO_PLACES)


def jsonable(value: Any) -> Any:
    """``value`` in the one JSON convention (docs/operations.md#json-output): money,
    prices and quantities exact, as decimal strings; dates and times ISO 8601; enums
    their value; sets sorted. Ratios are rounded with :func:`ratio` before this."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


# ── a proposal ───────────────────────────────────────────────────────────────

MONEY = ("cash_before", "cash_after", "realised_short", "realised_long", "estimated_tax", "cost")
RATIOS = ("drift_before", "drift_after", "tracking_before", "tracking_after")


def _lot_json(lot: Mapping[str, Any]) -> dict[str, Any]:
    quantity, basis, proceeds = (Decimal(lot[k]) for k in ("quantity", "basis", "proceeds"))
    return {
        "lot_id": lot["lot_id"],
        "quantity": quantity,
        "basis": basis,
        "proceeds": proceeds,
        "gain": proceeds - basis,
        "term": lot["term"],
    }


def _trade_json(trade: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "seq": trade["seq"],
        "security_id": trade["security_id"],
        "side": trade["side"],
        "quantity": trade["quantity"],
        "price": trade["price"],
        "value": trade["quantity"] * trade["price"],
        "reason": trade["reason"],
        "lots": [_lot_json(lot) for lot in trade["lots"]],
    }


def proposal_json(record: Mapping[str, Any], *, whole: bool = True) -> dict[str, Any]:
    """A proposal as every command prints it in JSON (docs/rebalancing.md#a-proposal-in-json).

    ``record`` is a proposal as the store gives it back (``repo.proposal``), or an
    unsaved one (``poise.cli.proposals.record_of``). ``whole`` adds its risk model, what
    bound it, its trades with their lots and the requests it answers; without it, a
    summary row counts its trades and requests instead."""
    trades = record["trades"]
    shown: dict[str, Any] = {
        "proposal_id": record.get("proposal_id"),
        "account_id": record["account_id"],
        "household_id": record.get("household_id"),
        "household_proposal_id": record.get("household_proposal_id"),
        "method": record["method"],
        "scenario": record.get("scenario"),
        "status": record.get("status"),
        "superseded_by": record.get("superseded_by"),
        "as_of": record.get("as_of"),
        "created_at": record.get("created_at"),
        **{k: record[k] for k in MONEY},
        "turnover": sum((t["quantity"] * t["price"] for t in trades), Decimal(0)),
        **{k: ratio(record[k]) for k in RATIOS},
    }
    if not whole:
        return {**shown, "trade_count": len(trades), "request_count": len(record["requests"])}
    return {
        **shown,
        "risk_model": record.get("risk_model"),
        "binding": list(record["binding"]),
        "trades": [_trade_json(t) for t in trades],
        "requests": [
            {"request_id": q["request_id"], "reasons": q["reasons"], "as_of": q["as_of"]}
            for q in record["requests"]
        ],
    }


def record_of(proposal: Proposal) -> dict[str, Any]:
    """An unsaved proposal (a scenario not kept) as a record :func:`proposal_json`
    reads: no id, no status, no requests."""
    return {
        "account_id": proposal.account_id,
        "method": proposal.method,
        **{k: getattr(proposal, k) for k in (*MONEY, *RATIOS)},
        "binding": proposal.binding,
        "trades": [
            {
                "seq": seq,
                "security_id": trade.security_id,
                "side": trade.side.value,
                "quantity": trade.quantity,
                "price": trade.price,
                "reason": trade.reason.value,
                "lots": [
                    {
                        "lot_id": s.lot_id,
                        "quantity": s.quantity,
                        "basis": s.basis,
                        "proceeds": s.proceeds,
                        "term": s.term.value,
                    }
                    for s in trade.lots
                ],
            }
            for seq, trade in enumerate(proposal.trades, start=1)
        ],
        "requests": [],
    }


TRADEOFF_RATIOS = ("tracking_before", "tracking_after", "drift_before", "drift_after")


def scenarios_json(
    proposed: Proposed, rows: Sequence[Tradeoff], *, as_of: datetime, kept: Mapping[str, Any]
) -> dict[str, Any]:
    """Every scenario of one account's rebalance side by side, as ``poise rebalance
    --account ID --scenario … --json`` prints it: each one's settings, its figures
    (``rows``: :func:`poise.optimize.scenarios.tradeoffs` of the results) and its
    proposal — ``kept``, the first one's as the store keeps it."""
    scenario, proposal = proposed.kept
    return {
        "proposal_id": proposed.proposal_id,
        "kept": scenario.name,
        "account_id": proposal.account_id,
        "as_of": as_of,
        "risk_model": proposed.risk_model,
        "risk_model_default": proposed.risk_default,
        "scenarios": [
            {
                "name": s.name,
                "method": s.method,
                "about": s.about,
                "settings": asdict(s.settings),
                "figures": {**asdict(row), **{k: ratio(getattr(row, k)) for k in TRADEOFF_RATIOS}},
                "proposal": kept if n == 0 else proposal_json(record_of(result)),
            }
            for n, ((s, result), row) in enumerate(zip(proposed.results, rows, strict=True))
        ],
    }


def household_json(
    household: HouseholdProposalRecord, parts: list[dict[str, Any]]
) -> dict[str, Any]:
    """A household's proposal in JSON: its own figures and each account's proposal
    (``parts``: each made by :func:`proposal_json`, whole)."""
    return {
        "household_proposal_id": household.proposal_id,
        "household_id": household.household_id,
        "method": household.method,
        "status": household.status,
        "as_of": household.as_of,
        "created_at": household.created_at,
        "model_id": household.model_id,
        "run_id": household.run_id,
        "meetings": list(household.meetings),
        "location": list(household.location),
        "held": household.held,
        "accounts": parts,
    }


# ── a rebalance request ──────────────────────────────────────────────────────

CENT = Decimal("0.01")
REQUEST_MONEY = frozenset({"value", "pending_in", "pending_out", "loss"})
REQUEST_RATIOS = frozenset(
    {"max_drift", "cash_weight", "cash_target", "outside_model"}
    | {"weight", "target", "drift", "band"}  # of a position or an asset class
)


def _figure(key: str, value: Any) -> Any:
    """One of a request's figures in the JSON convention: money an exact decimal, a
    ratio rounded to six places; objects and lists figure by figure."""
    if isinstance(value, dict):
        return {k: _figure(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_figure(key, v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return value
    if key in REQUEST_MONEY:  # the monitor rounds money to cents, as a float or a string
        return Decimal(value) if isinstance(value, str) else Decimal(str(value)).quantize(CENT)
    if key in REQUEST_RATIOS and not isinstance(value, str):
        return ratio(value)
    return value


def request_json(request: Mapping[str, Any]) -> dict[str, Any]:
    """A stored request as ``requests list`` prints it: its figures (as the monitor
    found them) in the JSON convention."""
    return {**request, "figures": _figure("figures", request["figures"])}


# ── approval ──────────────────────────────────────────────────────────────────


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """What an act of approval came to, as ``poise approve --json`` (and ``reject``,
    ``override``, ``acknowledge``, ``release``) prints it: the status before and
    after, whether anything changed, in words, and the proposal's state after."""
    after = outcome.after
    return {
        "proposal_id": outcome.proposal_id,
        "act": outcome.act.value,
        "changed": outcome.changed,
        "said": outcome.said,
        "status_before": outcome.before.value,
        "status": after.status.value,
        "reason": after.reason,
        "notional": after.notional,
        "approved_by": list(after.approved_by),
        "findings": [
            {
                "finding_id": f.finding_id,
                "blocks": f.blocks,
                "cleared_by": f.cleared_by,
                "cleared_at": f.cleared_at,
                "reason": f.reason,
            }
            for f in after.findings
        ],
        "ledger_entry": outcome.entry,
    }


def bulk_json(bulk: Bulk) -> dict[str, Any]:
    """What approving many proposals came to, as ``poise approve --run RUN --json``
    prints it."""
    return {
        "run_id": bulk.run_id,
        "approved": [outcome_json(o) for o in bulk.approved],
        "approved_already": [outcome_json(o) for o in bulk.already],
        "refused": [{"proposal_id": p, "why": why} for p, why in bulk.refused],
    }


def standing_json(stands: Standing, choices: Choices | None = None) -> dict[str, Any]:
    """Where a proposal stands in approval, for people — users by their usernames: its
    status, who prepared it, who approved it of how many needed, each finding with who
    cleared it and why; and, given ``choices``, what the reader may do now (each act,
    each finding's clearing), with why not. An account's proposal that is part of a
    household's says which (``part_of``), and no more: it is approved with that one."""
    about, state = stands.about, stands.state
    may = choices.findings if choices is not None else {}
    cleared = {f.finding_id: f for f in state.findings} if state is not None else {}
    findings = []
    for f in stands.findings:
        done = cleared.get(f.finding_id)
        by = done.cleared_by if done is not None else None
        findings.append({
            "finding_id": f.finding_id,
            "severity": "block" if f.blocks else "warn",
            "rule_id": f.rule_id,
            "kind": f.kind,
            "explanation": f.explanation,
            "detail": f.detail,
            "cleared": None if by is None else ("overridden" if f.blocks else "acknowledged"),
            "cleared_by": None if by is None else stands.name(by),
            "cleared_at": done.cleared_at if done is not None else None,
            "reason": done.reason if done is not None else "",
            "may_clear": may.get(f.finding_id) == "" if choices is not None else None,
            "why_not": may.get(f.finding_id, ""),
        })  # fmt: skip
    approved = list(state.approved_by) if state is not None else []
    return {
        "proposal_id": stands.proposal_id,
        "household": about.unit.household if about is not None else False,
        "household_id": about.unit.household_id if about is not None else None,
        "account_id": about.account_id if about is not None else None,
        "method": about.method if about is not None else None,
        "as_of": about.as_of if about is not None else None,
        "run_id": about.run_id if about is not None else None,
        "parts": list(about.parts) if about is not None else [],
        "part_of": stands.part_of,
        "status": state.status.value if state is not None else None,
        "status_reason": state.reason if state is not None else "",
        "made_at": state.made_at if state is not None else None,
        "prepared_by": stands.name(state.prepared_by) if state is not None else None,
        "notional": state.notional if state is not None else None,
        "approvers_needed": stands.needed if state is not None else None,
        "more_needed": max(0, stands.needed - len(approved)) if state is not None else None,
        "approved_by": [stands.name(u) for u in approved],
        "findings": findings,
        "waiting": [f["finding_id"] for f in findings if f["cleared"] is None],
        "acts": [
            {"act": a.value, "may": why == "", "why_not": why}
            for a, why in (choices.acts.items() if choices is not None else ())
        ],
    }


# ── a run, a backtest ────────────────────────────────────────────────────────


def run_json(run: RebalanceRun) -> dict[str, Any]:
    """A firm-wide run as ``poise runs list --json`` prints it."""
    return {
        "run_id": run.run_id,
        "status": run.status,
        "method": run.method,
        "as_of": run.as_of,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "selection": run.selection,
        "options": run.options,
        "households": run.households,
        "done": run.done,
        "failed": run.failed,
        "summary": run.summary,
    }


def backtest_json(record: BacktestRecord, charts: dict[str, str] | None) -> dict[str, Any]:
    """A kept backtest as ``poise backtests show --json`` prints it: what it was asked,
    and each method's figures and years (not its wealth day by day); ``charts``: where
    the run that made it wrote its charts, if it did."""
    return {
        "backtest_id": record.backtest_id,
        "created_at": record.created_at,
        "prices_file": record.prices_file,
        "prices_digest": record.prices_digest,
        "model_id": record.model_id,
        "from": record.start,
        "to": record.end,
        "inputs": record.inputs,
        "digest": record.digest,
        "charts": charts,
        "methods": {
            m: {
                "summary": {
                    k: ratio(v) if isinstance(v, float) else v for k, v in b.summary.items()
                },
                "years": b.years,
            }
            for m, b in record.methods.items()
        },
    }


# ── a load of files ──────────────────────────────────────────────────────────


def ingest_report_json(report: FileReport) -> dict[str, Any]:
    """One file's load as ``poise ingest --json`` prints it (docs/ingest.md#json-output):
    its counts, why it was refused or failed (else null), and every row it quarantined."""
    return {
        "path": report.path,
        "kind": report.kind,
        "read": report.read,
        "loaded": report.loaded,
        "inserted": report.inserted,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "quarantined": report.quarantined,
        "refused": report.refused or None,
        "failed": report.failed or None,
        "rejects": [{"line": x.line, "reason": x.reason} for x in report.rejects],
    }


def ingested_file_json(file: IngestedFile) -> dict[str, Any]:
    """One load in the history of files loaded: what the store recorded of it."""
    load = file.load
    return {
        "file_id": file.file_id,
        "name": load.name,
        "kind": load.kind,
        "sha256": load.sha256,
        "loaded_at": load.loaded_at,
        "read": load.read,
        "loaded": load.inserted + load.updated,
        "inserted": load.inserted,
        "updated": load.updated,
        "unchanged": load.unchanged,
        "quarantined": load.quarantined,
    }


def quarantined_json(row: Quarantined) -> dict[str, Any]:
    """A quarantined row as ``poise ingest --quarantine --json`` prints it."""
    return {
        "file_name": row.file_name,
        "kind": row.kind,
        "line": row.line,
        "reason": row.reason,
        "raw": row.raw,
        "sha256": row.sha256,
        "quarantined_at": row.quarantined_at,
    }
