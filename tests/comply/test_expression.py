"""Custom rules in the Common Expression Language, over the portfolio after trades."""

from __future__ import annotations

import pytest
from tests.comply.book import breaches, findings, household

from poise.comply.rules.expression import Expression, variables
from poise.comply.rulesets import RuleSetError, compose, parse

HOUSEHOLD = """
account A1 taxable cash 1000
account A2 roth_ira cash 1000
A1 AAPL 20       # $4,000
A2 BND 40        # $3,000
"""


def test_an_expression_when_true_then_nothing_is_found_and_when_false_then_its_message() -> None:
    rule = {
        "expression": "classes.fixed_income >= 0.3 && holdings.all(h, h.weight <= 0.85)",
        "message": "at least 30% in bonds, no holding above 85% of its account",
    }
    assert findings(Expression(rule_id="x", **rule), HOUSEHOLD) == []
    [f] = breaches(Expression, rule, HOUSEHOLD + "trade A2 sell BND 20")
    assert f.explanation == (
        "household H1: at least 30% in bonds, no holding above 85% of its account "
        "(the expression rule)"
    )
    assert f.accounts == ("A1", "A2")


def test_an_expression_when_it_reads_the_trades_then_they_are_there() -> None:
    rule = Expression(
        rule_id="no-big-roth-buys",
        expression="!trades.exists(t, t.side == 'buy' && t.value > 500.0 && "
        "accounts.exists(a, a.account == t.account && a.registration == 'roth_ira'))",
    )
    assert findings(rule, HOUSEHOLD + "trade A2 buy MO 10") == []  # $500
    [f] = findings(rule, HOUSEHOLD + "trade A2 buy MO 11")
    assert f.explanation.startswith("household H1: the portfolio fails !trades.exists(")


def test_an_expression_when_it_fails_to_evaluate_then_the_error_is_a_finding() -> None:
    missing = Expression(rule_id="oops", expression="classes.commodity < 0.1")
    [f] = findings(missing, HOUSEHOLD)
    assert f.measured == "error"
    assert f.explanation.startswith("the oops rule's expression could not be evaluated: ")
    assert "commodity" in f.explanation
    [f] = findings(Expression(rule_id="n", expression="value"), HOUSEHOLD)
    assert f.explanation == "the n rule's expression gave 9000.0, not true or false"


def test_an_expression_when_it_does_not_compile_then_the_rule_file_names_its_line() -> None:
    text = (
        "layer: firm\nrules:\n  - id: bonds\n    kind: expression\n"
        "    expression: 'classes.fixed_income >='\n"
    )
    with pytest.raises(RuleSetError) as e:
        parse(text, "firm.yaml")
    assert str(e.value).startswith("firm.yaml:5: rule 'bonds': field 'expression': ")
    assert "Syntax error" in str(e.value)


def test_an_expression_when_read_from_yaml_then_it_checks_as_written() -> None:
    text = (
        "layer: firm\nrules:\n  - id: cash\n    kind: expression\n    severity: warn\n"
        "    expression: cash_weight >= 0.30\n"
    )
    [rule] = compose([parse(text, "firm.yaml")]).rules()
    [f] = rule.check(*household(HOUSEHOLD))  # $2,000 of $9,000 in cash
    assert f.severity.value == "warn"


def test_the_variables_when_made_then_they_describe_the_portfolio_after_the_trades() -> None:
    _, after, trades = household(HOUSEHOLD + "trade A1 sell AAPL 5")
    seen = variables(after, trades)
    assert seen["value"] == 9000.0
    assert seen["cash_weight"] == pytest.approx(3000 / 9000)
    assert seen["classes"] == pytest.approx({"us_equity": 3000 / 9000, "fixed_income": 3000 / 9000})
    assert seen["holdings"][0] == {
        "account": "A1",
        "security": "AAPL",
        "symbol": "AAPL",
        "asset_class": "us_equity",
        "sector": "technology",
        "issuer": "AAPL",
        "tags": [],
        "quantity": 15.0,
        "value": 3000.0,
        "weight": pytest.approx(3000 / 5000),
        "household_weight": pytest.approx(3000 / 9000),
    }
    assert seen["trades"] == [
        {"account": "A1", "security": "AAPL", "side": "sell", "quantity": 5.0, "price": 200.0,
         "value": 1000.0}
    ]  # fmt: skip
