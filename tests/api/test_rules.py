"""The compliance rules as they apply to an account, over the API: the firm's layers
composed with the account's model, household and own, each field with the file and
line that set it — within the caller's scope like every object."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import add_people, build

from poise.api.app import API_PREFIX, create_app
from poise.domain.users import Role
from poise.settings import Settings

PEOPLE = {
    "adviser_h1": (Role.ADVISER, {"households": ["H1"]}),
    "adviser_h2": (Role.ADVISER, {"households": ["H2"]}),
}
FIRM = """\
layer: firm
rules:
  - id: single-security
    kind: security_weight
    max_weight: 0.20
    allow_loosen: [max_weight]
  - id: restricted
    kind: do_not_buy
    securities: [XOM]
"""
ACCOUNT = """\
layer: account
applies_to: "10000001"
rules:
  - id: restricted
    securities: [XOM, MSFT]
  - id: single-security
    max_weight: 0.25
"""


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[sa.Engine, dict[str, str], Path]]:
    engine, _ = build(tmp_path)
    rules = tmp_path / "rules"
    (rules / "accounts").mkdir(parents=True)
    (rules / "firm.yaml").write_text(FIRM)
    (rules / "accounts" / "10000001.yaml").write_text(ACCOUNT)
    yield engine, add_people(engine, PEOPLE), rules
    engine.dispose()


def test_rules_when_an_account_layer_applies_then_each_field_says_where_it_was_set(
    setup: tuple[sa.Engine, dict[str, str], Path],
) -> None:
    engine, tokens, rules = setup
    settings = Settings(workers=1, rules_dir=rules)
    with TestClient(create_app(settings, engine=engine)) as client:
        mine = {"Authorization": f"Bearer {tokens['adviser_h1']}"}
        answer = client.get(f"{API_PREFIX}/accounts/10000001/rules", headers=mine)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["files"] == ["firm.yaml", "accounts/10000001.yaml"]
        by_id = {r["rule_id"]: r for r in body["rules"]}
        assert by_id["restricted"]["params"] == {"securities": ["MSFT", "XOM"]}
        assert by_id["restricted"]["set_at"]["securities"] == "accounts/10000001.yaml:5"
        assert by_id["single-security"]["params"]["max_weight"] == 0.25
        assert by_id["single-security"]["set_at"]["max_weight"] == "accounts/10000001.yaml:7"
        other = client.get(f"{API_PREFIX}/accounts/10000003/rules", headers=mine)
        assert other.status_code == 404  # another household's account: not found
        theirs = {"Authorization": f"Bearer {tokens['adviser_h2']}"}
        plain = client.get(f"{API_PREFIX}/accounts/10000003/rules", headers=theirs).json()
        assert plain["files"] == ["firm.yaml"]
        assert {r["rule_id"]: r["params"] for r in plain["rules"]}["restricted"] == {
            "securities": ["XOM"]
        }
