"""Compliance in the shell, on SQLite and PostgreSQL: the firm's rule files read (or
poise's own default), every proposal checked as it is made — its findings kept with
it, its status blocked or pending, its ``proposal.made`` entry in the ledger — and
checked again at release, against the prices then."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.workflow.test_rebalance import AS_OF, load_firm

from poise.audit.ledger import entries
from poise.comply.rulesets import RuleSetError
from poise.domain.approvals import Act, Policy
from poise.domain.errors import ConflictError, ValidationError
from poise.domain.users import Role
from poise.settings import Settings
from poise.store import repo
from poise.store import tables as t
from poise.workflow.approvals import act
from poise.workflow.comply import load_rules
from poise.workflow.rebalance import Asked, rebalance_account

ORDERS = """\
layer: firm
rules:
  - id: big-order
    kind: max_order_value
    amount: 1000
  - id: few-trades
    kind: trade_count
    max_trades: 1
    severity: warn
"""

MOVES = """\
layer: firm
rules:
  - id: price-moved
    kind: price_moved
    max_move: 0.05
"""


def _rules(folder: Path, **files: str) -> Settings:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return Settings(rules_dir=folder)


def _ledger(engine: sa.Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        return [(e.action, e.subject, e.reason) for e in entries(connection)]


def test_rebalance_when_the_rules_block_then_the_proposal_is_blocked_with_its_findings_and_entry(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    settings = _rules(tmp_path / "rules", **{"firm.yaml": ORDERS})
    proposed = rebalance_account(
        engine, account_id="10000001", as_of=AS_OF, asked=Asked(method="bands"), settings=settings
    )
    _, proposal = proposed.kept
    assert len(proposal.trades) > 1
    assert max(t.value for t in proposal.trades) > 1000
    with engine.connect() as connection:
        kept = repo.proposal(connection, proposal_id=proposed.proposal_id)
        found = repo.findings_kept(connection, proposal_id=proposed.proposal_id)
    assert kept["status"] == "blocked"
    assert [(f.finding_id, f.rule_id, f.blocks) for f in found[:1]] == [("F1", "big-order", True)]
    assert {f.rule_id for f in found} == {"big-order", "few-trades"}
    warning = next(f for f in found if f.rule_id == "few-trades")
    assert not warning.blocks
    assert f"{len(proposal.trades)} trades" in warning.explanation
    action, subject, reason = _ledger(engine)[-1]
    assert (action, subject) == ("proposal.made", proposed.proposal_id)
    blocks = sum(f.blocks for f in found)
    assert reason == f"blocked: {blocks} block and {len(found) - blocks} warning findings"


def test_rebalance_when_no_rule_is_broken_then_pending_and_the_default_rules_ran(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    proposed = rebalance_account(
        engine, account_id="10000001", as_of=AS_OF, asked=Asked(method="bands"), settings=Settings()
    )
    with engine.connect() as connection:
        assert repo.proposal(connection, proposal_id=proposed.proposal_id)["status"] == "pending"
        assert repo.findings_kept(connection, proposal_id=proposed.proposal_id) == []
    assert _ledger(engine)[-1][:2] == ("proposal.made", proposed.proposal_id)
    assert "wash-sale" in {r.rule_id for r in load_rules(Settings()).rules()}


def _price(engine: sa.Engine, security_id: str, factor: str, hours: int) -> None:
    with engine.begin() as connection:
        latest = repo.latest_prices(connection, as_of=AS_OF, security_ids={security_id})
        connection.execute(
            sa.insert(t.prices).values(
                security_id=security_id,
                as_of=AS_OF + timedelta(hours=hours),
                source="close",
                price=latest[security_id][0] * Decimal(factor),
            )
        )


def test_release_when_a_traded_price_moved_past_the_rule_then_refused_and_the_ledger_says_so(
    engine: sa.Engine, tmp_path: Path
) -> None:
    load_firm(engine, tmp_path)
    settings = _rules(tmp_path / "rules", **{"firm.yaml": MOVES})
    proposed = rebalance_account(
        engine, account_id="10000001", as_of=AS_OF, asked=Asked(method="bands"), settings=settings
    )
    _, proposal = proposed.kept
    traded = proposal.trades[0].security_id
    with engine.begin() as connection:
        pam = repo.add_user(connection, username="pam", role=Role.PORTFOLIO_MANAGER)
        olu = repo.add_user(connection, username="olu", role=Role.OPERATIONS)
    policy = Policy(expire_on_move=Decimal("0.5"))  # the rule, not expiry, is what is tested
    book = load_rules(settings)
    approved = act(
        engine, proposal_id=proposed.proposal_id, what=Act.APPROVE, user=pam, policy=policy,
        at=AS_OF + timedelta(hours=1),
    )  # fmt: skip
    assert approved.status.value == "approved"
    _price(engine, traded, "1.08", hours=2)
    with pytest.raises(ConflictError, match="price-moved") as refused:
        act(
            engine, proposal_id=proposed.proposal_id, what=Act.RELEASE, user=olu, policy=policy,
            at=AS_OF + timedelta(hours=3), rules=book,
        )  # fmt: skip
    assert "8.0%" in str(refused.value)
    action, subject, _ = _ledger(engine)[-1]
    assert (action, subject) == ("proposal.release_refused", proposed.proposal_id)
    with engine.connect() as connection:
        assert repo.proposal(connection, proposal_id=proposed.proposal_id)["status"] == "approved"
    _price(engine, traded, "0.95", hours=4)  # 1.08 × 0.95: 2.6% from where it was made
    released = act(
        engine, proposal_id=proposed.proposal_id, what=Act.RELEASE, user=olu, policy=policy,
        at=AS_OF + timedelta(hours=5), rules=book,
    )  # fmt: skip
    assert released.status.value == "released"
    assert _ledger(engine)[-1][:2] == ("proposal.release", proposed.proposal_id)


def test_load_rules_when_a_file_is_bad_or_a_layer_is_given_twice_then_each_is_named(
    tmp_path: Path,
) -> None:
    bad = "layer: firm\nrules:\n  - id: x\n    kind: nonsense\n"
    with pytest.raises(RuleSetError, match=r"bad\.yaml:4: rule 'x': field 'kind'"):
        load_rules(_rules(tmp_path / "one", **{"bad.yaml": bad}))
    twice = {"a.yaml": ORDERS, "b.yaml": MOVES}
    with pytest.raises(
        RuleSetError, match=r"b\.yaml:1: a second firm layer \(the first: a\.yaml\)"
    ):
        load_rules(_rules(tmp_path / "two", **twice))
    with pytest.raises(ValidationError, match="no such folder"):
        load_rules(Settings(rules_dir=tmp_path / "nowhere"))
    loosened = "layer: model\napplies_to: CORE\nrules:\n  - id: big-order\n    amount: 5000\n"
    with pytest.raises(RuleSetError, match=r"core\.yaml:5: .* loosens 1000 set at firm\.yaml:5"):
        load_rules(_rules(tmp_path / "three", **{"firm.yaml": ORDERS, "core.yaml": loosened}))
