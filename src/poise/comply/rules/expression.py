"""Custom rules: an expression in the Common Expression Language (CEL) over the
portfolio after the trades, true when the portfolio passes.

CEL is a small, non-Turing-complete language made for exactly this — policies
evaluated fast and safely over data handed in: no loops but bounded
comprehensions (``all``, ``exists``, ``filter``, ``map``), no I/O, no access to
anything but the variables given. poise evaluates it with ``common-expression-
language`` (CEL's Rust implementation, bound to Python), chosen over ``cel-python``
and ``rule-engine`` by ``bench/comply_expressions.py`` (see bench/RESULTS.md). An
expression is compiled once, when its rule set is loaded (a syntax error there is
an error naming its file and line); one that fails while evaluated (a missing key,
a division by zero, a result that is not true or false) is a finding carrying the
error, never a crash.

The variables (see docs/rules.md): ``household`` (its id), ``value`` (the
household's value in dollars), ``cash_weight``, ``classes`` (asset class → weight of
the household), ``holdings`` (each with ``account``, ``security``, ``symbol``,
``asset_class``, ``sector``, ``issuer``, ``tags``, ``quantity``, ``value``,
``weight`` of its account and ``household_weight``), ``accounts`` (each with
``account``, ``registration``, ``cash``, ``value``, ``cash_weight``), and ``trades``
(each with ``account``, ``security``, ``side``, ``quantity``, ``price``,
``value``). Money reaches the expression as a double: a custom rule compares, it
does not account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import cel

from poise.comply.findings import Finding
from poise.comply.rules.base import Direction, Param, Rule, text
from poise.comply.views import Portfolio, TradeRow

__all__ = ["Expression", "compile_expression", "variables"]


def compile_expression(value: object) -> str:
    """An expression's text, once it compiles (else ``ValueError`` with CEL's words)."""
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"expected an expression, got {value!r}")
    cel.compile(value)
    return value


def variables(after: Portfolio, trades: tuple[TradeRow, ...]) -> dict[str, Any]:
    """What an expression sees of the portfolio after the trades."""
    accounts = after.accounts
    classes: dict[str, float] = {}
    holdings = []
    for i, security_id in enumerate(after.row_security):
        security = after.securities[security_id]
        weight = float(after.household_weight[i])
        classes[security.asset_class] = classes.get(security.asset_class, 0.0) + weight
        holdings.append(
            {
                "account": accounts[int(after.row_account[i])].account_id,
                "security": security_id,
                "symbol": security.symbol,
                "asset_class": security.asset_class,
                "sector": after.reference.sector_of(security),
                "issuer": after.reference.issuer_of(security),
                "tags": sorted(security.tags),
                "quantity": float(after.quantity[i]),
                "value": float(after.value[i]),
                "weight": float(after.weight[i]),
                "household_weight": weight,
            }
        )
    total = after.total
    cash = sum(float(a.cash) for a in accounts)
    return {
        "household": after.household_id,
        "value": float(total),
        "cash_weight": cash / float(total) if total else 0.0,
        "classes": classes,
        "holdings": holdings,
        "accounts": [
            {
                "account": a.account_id,
                "registration": a.registration.value,
                "cash": float(a.cash),
                "value": float(a.value),
                "cash_weight": float(after.cash_weight[k]),
            }
            for k, a in enumerate(accounts)
        ],
        "trades": [
            {
                "account": r.account_id,
                "security": r.trade.security_id,
                "side": r.trade.side.value,
                "quantity": float(r.trade.quantity),
                "price": float(r.trade.price),
                "value": float(r.value),
            }
            for r in trades
        ],
    }


# The last portfolio handed to CEL: every expression rule of a proposal reads the one
# context, since converting the holdings into CEL values is most of an evaluation
# (bench/RESULTS.md). One entry, read and replaced whole, so a thread never reads
# another's half-made one.
_LAST: list[tuple[Portfolio, tuple[TradeRow, ...], Any]] = []


def _context(after: Portfolio, trades: tuple[TradeRow, ...]) -> Any:
    last = _LAST[0] if _LAST else None
    if last is not None and last[0] is after and last[1] is trades:
        return last[2]
    context = cel.Context(variables(after, trades))
    _LAST[:] = [(after, trades, context)]
    return context


@dataclass(frozen=True, slots=True, kw_only=True)
class Expression(Rule):
    """A custom rule: ``expression`` is true of a portfolio that passes; ``message``
    says what a breach means, in the finding."""

    kind: ClassVar[str] = "expression"
    PARAMS: ClassVar[dict[str, Param]] = {
        "expression": Param(compile_expression, Direction.FIXED, about="CEL, true to pass"),
        "message": Param(text, Direction.FIXED, required=False, about="what a breach means"),
    }

    expression: str
    message: str = ""
    program: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.program is None:
            object.__setattr__(self, "program", cel.compile(self.expression))

    def check(
        self, before: Portfolio, after: Portfolio, trades: tuple[TradeRow, ...]
    ) -> list[Finding]:
        try:
            result = self.program.execute(_context(after, trades))
        except Exception as e:
            return [self._failed(f"could not be evaluated: {type(e).__name__}: {e}")]
        if result is True:
            return []
        if result is False:
            what = self.message or f"the portfolio fails {self.expression}"
            return [
                self.found(
                    "false",
                    "true",
                    f"household {after.household_id}: {what} (the {self.rule_id} rule)",
                    accounts=tuple(a.account_id for a in after.accounts),
                )
            ]
        return [self._failed(f"gave {result!r}, not true or false")]

    def _failed(self, why: str) -> Finding:
        return self.found("error", "true", f"the {self.rule_id} rule's expression {why}")
