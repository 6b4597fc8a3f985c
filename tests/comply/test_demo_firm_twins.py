"""The whole demo firm, rebalanced firm-wide by the optimiser under rules that each
have a twin in it, through the commands a user runs: no proposal is blocked by a rule
whose twin the optimiser was given — what is optimised and what is checked agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poise.store import tables as t

TWINNED_RULES = """\
layer: firm
rules:
  - {id: single-security, kind: security_weight, max_weight: 0.10,
     exempt: [SPY, VTI, VOO, BND, VGSH, VMFXX]}
  - {id: restricted, kind: do_not_buy, securities: [XOM, AMD]}
  - {id: keep, kind: do_not_sell, securities: [KO]}
  - {id: screens, kind: excluded_tags, tags: [tobacco]}
  - {id: cash, kind: minimum_cash, amount: 500}
  - {id: turnover, kind: turnover, max_turnover: 0.25}
  - {id: tax, kind: tax_budget, amount: 20000}
  - {id: small, kind: minimum_trade, amount: 250}
  - {id: client, kind: client_exclusions}
"""
TWINNED = {
    "security_weight",
    "do_not_buy",
    "do_not_sell",
    "excluded_tags",
    "minimum_cash",
    "turnover",
    "tax_budget",
    "minimum_trade",
    "client_exclusions",
}


def _poise(*args: str, env: dict[str, str], code: int = 0) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "poise", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == code, done.stdout + done.stderr
    return done.stdout


def test_rebalance_all_when_the_rules_have_twins_then_no_proposal_of_the_demo_firm_is_blocked(
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "firm.yaml").write_text(TWINNED_RULES)
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    env = {**os.environ, "POISE_DATABASE_URL": url, "POISE_RULES_DIR": str(rules)}
    _poise("demo", "--load-only", "--out", str(tmp_path / "files"), env=env)  # the whole demo firm
    _poise("rebalance", "--all", "--as-of", "2022-12-29", "--method", "optimize", env=env)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        h, f, p, pt = (
            t.household_proposals,
            t.proposal_findings,
            t.proposals,
            t.proposal_trades,
        )
        statuses = dict(
            connection.execute(sa.select(h.c.status, sa.func.count()).group_by(h.c.status)).all()
        )
        found = connection.execute(
            sa.select(f.c.kind, f.c.blocks, f.c.explanation).where(
                f.c.proposal_id.in_(sa.select(h.c.proposal_id))
            )
        ).all()
        trades = connection.execute(
            sa.select(sa.func.count()).select_from(pt.join(p, p.c.proposal_id == pt.c.proposal_id))
        ).scalar_one()
    engine.dispose()
    assert sum(statuses.values()) >= 150, statuses  # nearly every household proposed
    assert trades > 1000  # and they trade: the rules had something to judge
    twinned_blocks = [e for kind, blocks, e in found if blocks and kind in TWINNED]
    assert twinned_blocks == []
    assert set(statuses) <= {"pending", "blocked"}

    # Checked again on demand, every household proposal of the run at once: the same
    # rules on the same books and prices find the same — none of the twinned kinds.
    with sa.create_engine(url).connect() as connection:
        run = connection.execute(sa.select(sa.func.max(h.c.run_id))).scalar_one()
    again = json.loads(_poise("comply", "--run", run, "--as-of", "2022-12-29", "--json", env=env))
    assert len(again["proposals"]) == sum(statuses.values())
    assert [f for p in again["proposals"] for f in p["findings"] if f["kind"] in TWINNED] == []

    # The holdings as they stand (before any trade): breaches the markets made raise a
    # monitor request each, once — a second look the same day raises none. It exits 1
    # when any of them blocks.
    first = _holdings(env)
    assert first["households"] >= 150
    assert first["breaches"]
    assert first["requests_raised"]
    assert all(r.endswith("/2022-12-29/compliance") for r in first["requests_raised"])
    second = _holdings(env)
    assert (second["breaches"], second["requests_raised"]) == (first["breaches"], [])


def _holdings(env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "poise", "comply", "--holdings", "--as-of", "2022-12-29", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    blocks = any(f["severity"] == "block" for fs in found["breaches"].values() for f in fs)
    assert done.returncode == (1 if blocks else 0), done.stderr
    return found
