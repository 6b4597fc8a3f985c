"""docs/rules.md documents every rule kind, and its examples are rule files poise reads.

Every ```` ```yaml ```` block on the page is a complete rule file: each is read and
its layers composed, one file at a time. Every kind in ``poise.comply.rules.KINDS``
has a section with an example, and every parameter it takes is named in it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from poise.comply.rules import KINDS
from poise.comply.rulesets import compose, parse

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```yaml\n(.*?)```", PAGE, flags=re.DOTALL)


@pytest.mark.parametrize("number", range(len(BLOCKS)))
def test_an_example_when_read_then_it_is_a_valid_rule_file(number: int) -> None:
    """An example that overrides rules (its rules without a kind) is read below the
    example before it, the upper layer it was written against."""
    files = [parse(BLOCKS[number], f"docs/rules.md example {number + 1}")]
    if any(not spec.kind for spec in files[0].rules):
        files.insert(0, parse(BLOCKS[number - 1], f"docs/rules.md example {number}"))
    compose(files).rules()


def _section(kind: str) -> str:
    start = PAGE.index(f"`{kind}`\n")
    following = PAGE.find("\n#", start + 1)
    return PAGE[start : following if following > 0 else len(PAGE)]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_kind_when_documented_then_its_parameters_and_an_example_are_there(kind: str) -> None:
    section = _section(kind)
    for name in KINDS[kind].PARAMS:
        assert f"`{name}`" in section, f"{kind}: parameter {name} is not documented"
    assert f"kind: {kind}" in section, f"{kind}: no example"
