"""Rows that ingest accepted read back as valid domain objects, on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poise.demo import generate_firm, write_firm
from poise.domain.models import resolve
from poise.optimize.trades import Proposal
from poise.store import repo
from poise.workflow.ingest import ingest_paths

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
DATA = SHARED if SHARED.is_dir() else None  # else the copy the package ships


def test_repo_when_the_demo_firm_is_loaded_then_every_row_builds_its_domain_object(
    engine: sa.Engine, tmp_path: Path
) -> None:
    firm = generate_firm(households=8, seed=11, data_dir=DATA)
    reports = ingest_paths(engine, write_firm(firm, tmp_path), today=date(2026, 1, 1))
    assert all(r.quarantined == 0 and not r.refused for r in reports)
    with engine.connect() as connection:
        securities = repo.securities(connection)
        models = repo.models(connection)
        accounts = repo.accounts(connection)
        lots = repo.lots(connection)
    assert len(accounts) == firm.accounts.height
    assert len(lots) == firm.lots.height
    for model_id in models:  # every model, models of models too, resolves to exactly 1
        resolved = resolve(model_id, models)
        assert sum(resolved.securities.values(), resolved.cash) == Decimal(1)
        assert set(resolved.securities) <= set(securities)
    for security in securities.values():
        assert set(security.replacements) <= set(securities)
    assert {lot.security_id for lot in lots} <= set(securities)


def a_proposal(account_id: str = "A1", method: str = "bands") -> Proposal:
    """A proposal with no trades: what the store keeps of it is its id and its figures."""
    zero = Decimal(0)
    return Proposal(account_id, method, (), zero, zero, zero, zero, zero, zero, zero, zero)


def keep(
    connection: sa.Connection,
    as_of: datetime,
    *,
    method: str = "bands",
    scenario: str | None = None,
) -> str:
    saved = repo.save_proposal(
        connection,
        proposal=a_proposal(method=method),
        as_of=as_of,
        created_at=datetime.now(UTC),
        scenario=scenario,
    )
    return saved.proposal_id


DAY = datetime(2022, 12, 29, 23, 59, 59, tzinfo=UTC)


def test_save_proposal_when_one_account_day_and_method_run_again_then_each_run_keeps_a_numbered_id(
    engine: sa.Engine,
) -> None:
    with engine.begin() as connection:
        ids = [keep(connection, DAY) for _ in range(3)]
        other_day = keep(connection, DAY + timedelta(days=1))
        kept_scenario = keep(connection, DAY, method="optimize", scenario="full")
        found = {p["proposal_id"]: p for p in repo.proposals(connection, account_id="A1")}
    assert ids == ["A1/2022-12-29/bands", "A1/2022-12-29/bands.2", "A1/2022-12-29/bands.3"]
    assert other_day == "A1/2022-12-30/bands"
    assert kept_scenario == "A1/2022-12-29/optimize/full"
    # Each run replaced the last live one of its account and method, and says by which.
    assert [(found[i]["status"], found[i]["superseded_by"]) for i in [*ids, other_day]] == [
        ("superseded", ids[1]),
        ("superseded", ids[2]),
        ("superseded", other_day),
        ("proposed", None),
    ]
    assert found[kept_scenario]["status"] == "proposed"  # another method: not replaced


def request(
    account_id: str | None, day: date, *reasons: str, household: str = "H1"
) -> dict[str, Any]:
    return {
        "request_id": f"{account_id or household}/{day}/{'+'.join(reasons)}",
        "account_id": account_id,
        "household_id": household,
        "reasons": list(reasons),
        "as_of": datetime.combine(day, time(21), tzinfo=UTC).isoformat(),
        "figures": {},
    }


def test_answer_requests_when_a_proposal_is_kept_then_its_accounts_requests_by_its_as_of_close(
    engine: sa.Engine,
) -> None:
    """
    A1 was asked to rebalance on 27 and 28 December, and again on 31 December; A2 on
    28 December; the household H1 as a whole on 28 December. A proposal for A1 as of
    29 December answers A1's first two: the 31st's came after what it saw, A2's and
    the household's are not its account's.
    """
    with engine.begin() as connection:
        repo.save_requests(
            connection,
            requests=[
                request("A1", date(2022, 12, 27), "band_breach"),
                request("A1", date(2022, 12, 28), "harvest"),
                request("A1", date(2022, 12, 31), "cash_short"),
                request("A2", date(2022, 12, 28), "band_breach"),
                request(None, date(2022, 12, 28), "manual"),
            ],
            received_at=datetime.now(UTC),
        )
        first = keep(connection, DAY)
        answered = repo.answer_requests(connection, proposal_id=first, account_id="A1", as_of=DAY)
        still_open = repo.open_request_reasons(connection)
        # A second run supersedes the first and answers its requests from then on.
        saved = repo.save_proposal(
            connection,
            proposal=a_proposal(),
            as_of=DAY,
            created_at=datetime.now(UTC),
        )
        again = repo.answer_requests(
            connection,
            proposal_id=saved.proposal_id,
            account_id="A1",
            as_of=DAY,
            superseded=saved.superseded,
        )
        by_id = {r["request_id"]: r for r in repo.list_requests(connection)}
        shown = repo.proposal(connection, proposal_id=saved.proposal_id)
    assert answered == ["A1/2022-12-27/band_breach", "A1/2022-12-28/harvest"]
    assert still_open == {"A1": frozenset({"cash_short"}), "A2": frozenset({"band_breach"})}
    assert saved.superseded == (first,)
    assert again == answered
    assert [(by_id[i]["status"], by_id[i]["answered_by"]) for i in answered] == [
        ("answered", saved.proposal_id)
    ] * 2
    assert by_id["A1/2022-12-31/cash_short"]["status"] == "open"
    assert by_id["H1/2022-12-28/manual"]["status"] == "open"
    assert [r["request_id"] for r in shown["requests"]] == answered


def test_list_requests_when_filtered_then_each_filter_narrows_and_the_count_agrees(
    engine: sa.Engine,
) -> None:
    with engine.begin() as connection:
        repo.save_requests(
            connection,
            requests=[
                request("A1", date(2022, 12, 27), "band_breach", "harvest"),
                request("A1", date(2022, 12, 28), "harvest"),
                request("A2", date(2022, 12, 28), "cash_excess", household="H2"),
                request("A3_B", date(2022, 12, 29), "band_breach"),
            ],
            received_at=datetime.now(UTC),
        )
        keep(connection, DAY)
        repo.answer_requests(
            connection, proposal_id="A1/2022-12-29/bands", account_id="A1", as_of=DAY
        )

        def found(**where: Any) -> list[str]:
            f = repo.RequestFilter(**where)
            listed = [r["request_id"] for r in repo.list_requests(connection, where=f)]
            assert repo.count_requests(connection, where=f) == len(listed)
            return sorted(listed)

        assert len(found()) == 4
        assert found(account_id="A1") == [
            "A1/2022-12-27/band_breach+harvest",
            "A1/2022-12-28/harvest",
        ]
        assert found(household_id="H2") == ["A2/2022-12-28/cash_excess"]
        assert found(status="open") == ["A2/2022-12-28/cash_excess", "A3_B/2022-12-29/band_breach"]
        assert found(reason="harvest") == found(account_id="A1")  # a whole reason of several
        assert found(reason="band") == []  # not part of one
        assert found(since=date(2022, 12, 28), until=date(2022, 12, 28)) == [
            "A1/2022-12-28/harvest",
            "A2/2022-12-28/cash_excess",
        ]
        assert len(repo.list_requests(connection, limit=1)) == 1


def test_save_proposals_when_many_are_kept_at_once_then_each_is_kept_as_if_one_after_another(
    engine: sa.Engine,
) -> None:
    """
    A1 was proposed once on 29 December. A run keeps, at once, A1 again, A2, A1 a third
    time and A1 by another method: A1's runs are numbered in order, each superseding
    the one before, as if kept one after another; A2 and the other method stand alone.
    """
    with engine.begin() as connection:
        first = keep(connection, DAY)
        kept = repo.save_proposals(
            connection,
            proposals=[
                repo.ProposalToKeep(a_proposal("A1"), risk_model="sample"),
                repo.ProposalToKeep(a_proposal("A2")),
                repo.ProposalToKeep(a_proposal("A1")),
                repo.ProposalToKeep(a_proposal("A1", "optimize")),
            ],
            as_of=DAY,
            created_at=datetime.now(UTC),
        )
        found = {p["proposal_id"]: p for p in repo.find_proposals(connection)}
    base = "A1/2022-12-29"
    assert [(k.proposal_id, k.superseded) for k in kept] == [
        (f"{base}/bands.2", (first,)),
        ("A2/2022-12-29/bands", ()),
        (f"{base}/bands.3", (f"{base}/bands.2",)),
        (f"{base}/optimize", ()),
    ]
    assert [(i, found[i]["status"], found[i]["superseded_by"]) for i in sorted(found)] == [
        (first, "superseded", f"{base}/bands.2"),
        (f"{base}/bands.2", "superseded", f"{base}/bands.3"),
        (f"{base}/bands.3", "proposed", None),
        (f"{base}/optimize", "proposed", None),
        ("A2/2022-12-29/bands", "proposed", None),
    ]
    assert found[f"{base}/bands.2"]["risk_model"] == "sample"


def test_save_proposal_when_a_day_has_more_runs_than_are_looked_up_at_once_then_the_next_is_free(
    engine: sa.Engine,
) -> None:
    """Numbered ids are looked up eight at a time after the first: the eleventh run of
    a day follows the tenth, across two such windows."""
    with engine.begin() as connection:
        ids = [keep(connection, DAY) for _ in range(11)]
    assert ids[8:] == [f"A1/2022-12-29/bands.{n}" for n in (9, 10, 11)]


def test_answer_all_requests_when_one_account_is_answered_twice_at_once_then_the_later_takes_over(
    engine: sa.Engine,
) -> None:
    """
    A1 was asked to rebalance on 27 and 28 December, A2 on 28 December. Three proposals
    as of the 29th are answered at once: A1's, A2's, and a second of A1's that
    supersedes the first — it takes A1's requests over, as if answered after it.
    """
    with engine.begin() as connection:
        repo.save_requests(
            connection,
            requests=[
                request("A1", date(2022, 12, 27), "band_breach"),
                request("A1", date(2022, 12, 28), "harvest"),
                request("A2", date(2022, 12, 28), "band_breach"),
            ],
            received_at=datetime.now(UTC),
        )
        answered = repo.answer_all_requests(
            connection,
            answering=[
                repo.Answering("P1", "A1"),
                repo.Answering("P2", "A2"),
                repo.Answering("P3", "A1", superseded=("P1",)),
            ],
            as_of=DAY,
        )
        by_id = {r["request_id"]: r["answered_by"] for r in repo.list_requests(connection)}
    a1 = ["A1/2022-12-27/band_breach", "A1/2022-12-28/harvest"]
    assert answered == {"P1": a1, "P2": ["A2/2022-12-28/band_breach"], "P3": a1}
    assert by_id == {**dict.fromkeys(a1, "P3"), "A2/2022-12-28/band_breach": "P2"}


def test_lots_when_asked_for_more_accounts_than_one_query_takes_then_every_lot_comes_in_order(
    engine: sa.Engine, tmp_path: Path
) -> None:
    firm = generate_firm(households=8, seed=11, data_dir=DATA)
    ingest_paths(engine, write_firm(firm, tmp_path), today=date(2026, 1, 1))
    with engine.connect() as connection:
        every = repo.lots(connection)
        ids = sorted({lot.account_id for lot in every})
        asked = [*ids[1:], *(f"X{i:05d}" for i in range(1_200))]  # ranges of 500 accounts
        found = repo.lots(connection, account_ids=asked)
    assert found == [lot for lot in every if lot.account_id != ids[0]]
