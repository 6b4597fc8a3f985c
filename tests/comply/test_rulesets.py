"""Rule sets in YAML: layers that tighten, a loosening only where allowed, and bad
files refused with the file, the line and the field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from poise.comply.findings import Severity
from poise.comply.rules.concentration import SecurityWeight
from poise.comply.rules.restricted import DoNotBuy
from poise.comply.rulesets import Layer, RuleSetError, compose, parse

D = Decimal

FIRM = """\
layer: firm
rules:
  - id: single-security
    kind: security_weight
    max_weight: 0.10
    allow_loosen: [max_weight]
  - id: restricted
    kind: do_not_buy
    securities: [FIRM]
  - id: cash
    kind: minimum_cash
    amount: 500
    severity: warn
  - id: turnover
    kind: turnover
    max_turnover: 0.30
"""


def test_a_firm_file_when_read_then_every_rule_is_built_with_its_parameters() -> None:
    firm = parse(FIRM, "firm.yaml")
    assert firm.layer is Layer.FIRM
    rules = compose([firm]).rules()
    assert rules[0] == SecurityWeight(rule_id="single-security", max_weight=0.10)
    assert rules[1] == DoNotBuy(rule_id="restricted", securities=frozenset({"FIRM"}))
    assert rules[2].severity is Severity.WARN
    assert [r.kind for r in rules] == ["security_weight", "do_not_buy", "minimum_cash", "turnover"]


def test_a_lower_layer_when_it_tightens_then_its_values_stand() -> None:
    household = parse(
        """\
layer: household
applies_to: H1
rules:
  - id: restricted
    securities: [FIRM, MO]      # more names: tighter
  - id: cash
    amount: 1000                # more cash: tighter
    severity: block             # warn made block: tighter
  - id: turnover
    max_turnover: 0.20
  - id: no-tobacco              # a rule of its own
    kind: excluded_tags
    tags: [tobacco]
""",
        "households/H1.yaml",
    )
    ruleset = compose([parse(FIRM, "firm.yaml"), household])
    rules = {r.rule_id: r for r in ruleset.rules()}
    assert rules["restricted"] == DoNotBuy(
        rule_id="restricted", securities=frozenset({"FIRM", "MO"})
    )
    assert rules["cash"].amount == D(1000)
    assert rules["cash"].severity is Severity.BLOCK
    assert rules["turnover"].max_turnover == 0.20
    assert rules["no-tobacco"].kind == "excluded_tags"
    assert str(ruleset.spec("cash").set_at["amount"]) == "households/H1.yaml:7"


def test_a_lower_layer_when_it_loosens_what_is_allowed_then_it_stands() -> None:
    model = parse(
        "layer: model\napplies_to: INCOME\nrules:\n  - id: single-security\n    max_weight: 0.15\n",
        "models/INCOME.yaml",
    )
    [rule, *_] = compose([parse(FIRM, "firm.yaml"), model]).rules()
    assert rule == SecurityWeight(rule_id="single-security", max_weight=0.15)


@pytest.mark.parametrize(
    ("lower", "field", "upper_line", "shown"),
    [
        ("  - id: turnover\n    max_turnover: 0.50\n", "max_turnover", 16, "0.5 loosens 0.3"),
        ("  - id: restricted\n    securities: []\n", "securities", 9, "[] loosens [FIRM]"),
        # not set above: the upper rule's own line
        ("  - id: restricted\n    severity: warn\n", "severity", 7, "warn loosens block"),
        ("  - id: turnover\n    enabled: false\n", "enabled", 14, "false loosens true"),
    ],
)
def test_a_lower_layer_when_it_loosens_what_is_not_allowed_then_both_layers_are_named(
    lower: str, field: str, upper_line: int, shown: str
) -> None:
    account = parse(
        "layer: account\napplies_to: '10000001'\n# the account's own\nrules:\n" + lower,
        "accounts/10000001.yaml",
    )
    with pytest.raises(RuleSetError) as e:
        compose([parse(FIRM, "firm.yaml"), account])
    message = str(e.value)
    assert message.startswith("accounts/10000001.yaml:6: rule ")  # the line of the field
    assert f"field {field!r}: {shown} set at firm.yaml:{upper_line}" in message
    assert "does not allow it to be loosened" in message


def test_a_permission_when_passed_down_then_a_layer_cannot_grant_more_than_it_had() -> None:
    model = parse(
        "layer: model\napplies_to: M\nrules:\n  - id: turnover\n    max_turnover: 0.25\n"
        "    allow_loosen: [max_turnover]\n",
        "m.yaml",
    )
    account = parse(
        "layer: account\napplies_to: A\nrules:\n  - id: turnover\n    max_turnover: 0.28\n",
        "a.yaml",
    )
    with pytest.raises(RuleSetError, match=r"a\.yaml:5: rule 'turnover': field 'max_turnover'"):
        compose([parse(FIRM, "firm.yaml"), model, account])


def test_layers_when_out_of_order_then_they_are_refused() -> None:
    household = parse("layer: household\napplies_to: H\nrules: []\n", "h.yaml")
    model = parse("layer: model\napplies_to: M\nrules: []\n", "m.yaml")
    with pytest.raises(RuleSetError, match="a model layer cannot come below the household"):
        compose([household, model])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "layer: firm\nrules:\n  - id: a\n    kind: concentrate\n    max_weight: 0.1\n",
            "bad.yaml:4: rule 'a': field 'kind': unknown kind 'concentrate'",
        ),
        (
            "layer: firm\nrules:\n  - id: a\n    kind: security_weight\n    max_weight: ten\n",
            "bad.yaml:5: rule 'a': field 'max_weight': expected a fraction between 0 and 1,"
            " got 'ten'",
        ),
        (
            "layer: firm\nrules:\n  - id: a\n    kind: security_weight\n    max_weight: 1.5\n",
            "bad.yaml:5: rule 'a': field 'max_weight': expected a fraction between 0 and 1",
        ),
        (
            "layer: firm\nrules:\n  - id: a\n    kind: security_weight\n    scope: account\n",
            "bad.yaml:3: rule 'a': field 'max_weight' is missing",
        ),
        (
            "layer: firm\nrules:\n  - id: a\n    kind: long_only\n  - id: a\n    kind: no_margin\n",
            "bad.yaml:5: rule 'a': id given twice (first at bad.yaml:3)",
        ),
        (
            "layer: firm\nrules:\n  - id: a\n    kind: do_not_buy\n    securities: FIRM\n",
            "bad.yaml:5: rule 'a': field 'securities': expected a list of names, got 'FIRM'",
        ),
        (
            "layer: firm\nrules:\n  - id: a\n    kind: long_only\n    max_weight: 0.1\n",
            "bad.yaml:5: rule 'a': field 'max_weight': long_only has no such parameter",
        ),
        (
            "layer: firm\nrules:\n  - id: a\n    kind: long_only\n    severity: fatal\n",
            "bad.yaml:5: rule 'a': field 'severity': 'fatal' is not block or warn",
        ),
        ("layer: planet\nrules: []\n", "bad.yaml:1: field 'layer': 'planet' is not firm"),
        ("layer: household\nrules: []\n", "bad.yaml:1: field 'applies_to' is missing"),
        ("layer: firm\nrules:\n  - id: a\n   kind: x\n", "bad.yaml:4: not YAML"),
        (
            "layer: firm\nrules:\n  - id: a\n    kind: long_only\n    kind: no_margin\n",
            "bad.yaml:5: a rule: field 'kind' given twice",
        ),
    ],
)
def test_a_bad_file_when_read_then_the_error_names_its_file_line_and_field(
    text: str, expected: str
) -> None:
    with pytest.raises(RuleSetError) as e:
        parse(text, "bad.yaml")
    assert expected in str(e.value)


def test_a_lower_rule_when_it_names_no_kind_and_overrides_nothing_then_it_is_refused() -> None:
    with pytest.raises(RuleSetError, match=r"h\.yaml:4: rule 'nope': field 'kind' is missing"):
        compose(
            [parse("layer: household\napplies_to: H\nrules:\n  - id: nope\n    x: 1\n", "h.yaml")]
        )


def test_the_files_when_chosen_for_an_account_then_its_own_layers_come_top_down() -> None:
    from poise.comply.rulesets import applying  # noqa: PLC0415

    def layer(kind: str, of: str) -> str:
        return f"layer: {kind}\napplies_to: '{of}'\nrules: []\n"

    files = [
        parse(layer("account", "10000001"), "a1.yaml"),
        parse(layer("household", "H1"), "h1.yaml"),
        parse(layer("household", "H2"), "h2.yaml"),
        parse(layer("model", "GROWTH"), "growth.yaml"),
        parse(FIRM, "firm.yaml"),
    ]
    chosen = applying(files, model_id="GROWTH", household_id="H1", account_id="10000001")
    assert [f.name for f in chosen] == ["firm.yaml", "growth.yaml", "h1.yaml", "a1.yaml"]
    assert [f.name for f in applying(files, household_id="H2")] == ["firm.yaml", "h2.yaml"]


def test_an_account_id_of_digits_when_given_then_it_is_kept_as_written() -> None:
    account = parse("layer: account\napplies_to: 00012345\nrules: []\n", "a.yaml")
    assert account.applies_to == "00012345"
    with pytest.raises(RuleSetError, match="quote a name that reads as a number"):
        parse("layer: firm\nrules:\n  - {id: a, kind: do_not_buy, securities: [123]}\n", "f")
