"""The worker's view of the requests: a household's open ones, a household's own answered
by its household proposal, and those it cannot answer failed with why — and a request
closed stays closed."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
import sqlalchemy as sa

from poise.domain.errors import ValidationError
from poise.store import repo

AS_OF = datetime(2022, 12, 28, 23, 59, 59, tzinfo=UTC)


def request(account: str | None, day: date, reason: str, *, household: str) -> dict[str, Any]:
    return {
        "request_id": f"{account or household}/{day}/{reason}",
        "account_id": account,
        "household_id": household,
        "reasons": [reason],
        "as_of": datetime.combine(day, time(21), tzinfo=UTC).isoformat(),
        "figures": {},
    }


def test_household_requests_when_failed_or_answered_then_only_the_open_ones_change(
    engine: sa.Engine,
) -> None:
    """
    H1 has A1's requests of 27 and 29 December, its own (manual) of the 28th, and A2's
    of the 28th — A2 moved into H1 after that request named H2. H2 has A3's. A proposal
    of H1 as of the 28th answers H1's own request; A1's of the 27th cannot be answered
    (A1 held) and fails; a second failure of it changes nothing.
    """
    with engine.begin() as connection:
        repo.save_requests(
            connection,
            requests=[
                request("A1", date(2022, 12, 27), "band_breach", household="H1"),
                request("A1", date(2022, 12, 29), "harvest", household="H1"),
                request(None, date(2022, 12, 28), "manual", household="H1"),
                request("A2", date(2022, 12, 28), "cash_excess", household="H2"),
                request("A3", date(2022, 12, 28), "cash_short", household="H2"),
            ],
            received_at=datetime.now(UTC),
        )
        by_name = repo.household_requests(connection, household_id="H1", until=AS_OF, lock=True)
        with_a2 = repo.household_requests(
            connection, household_id="H1", account_ids=["A1", "A2"], until=AS_OF
        )
        answered = repo.answer_household_requests(
            connection, household_id="H1", proposal_id="H1/2022-12-28/optimize", as_of=AS_OF
        )
        failed = repo.fail_requests(
            connection, failures={"A1/2022-12-27/band_breach": "account A1 is held: no_price"}
        )
        again = repo.fail_requests(
            connection,
            failures={
                "A1/2022-12-27/band_breach": "another reason",
                "H1/2022-12-28/manual": "too late: it is answered",
            },
        )
        states = repo.request_states(connection, ids=["A1/2022-12-27/band_breach", "nope"])
        listed = {r["request_id"]: r for r in repo.list_requests(connection)}
        still_open = repo.household_requests(connection, household_id="H1")
        failures = repo.list_requests(connection, where=repo.RequestFilter(status="failed"))
    assert [r.request_id for r in by_name] == [
        "A1/2022-12-27/band_breach",
        "H1/2022-12-28/manual",
    ]  # A1's of the 29th came after; A2's names H2
    assert [r.request_id for r in with_a2] == [
        "A1/2022-12-27/band_breach",
        "A2/2022-12-28/cash_excess",
        "H1/2022-12-28/manual",
    ]
    assert answered == ["H1/2022-12-28/manual"]
    assert listed["H1/2022-12-28/manual"]["answered_by"] == "H1/2022-12-28/optimize"
    assert failed == ["A1/2022-12-27/band_breach"]
    assert again == []  # one already failed, one answered: both stay as they were
    state = states["A1/2022-12-27/band_breach"]
    assert (state.status, state.failure, state.answered_by) == (
        "failed",
        "account A1 is held: no_price",
        None,
    )
    assert set(states) == {"A1/2022-12-27/band_breach"}  # an id never stored is not there
    assert [r.request_id for r in still_open] == ["A1/2022-12-29/harvest"]
    assert [(r["request_id"], r["failure"]) for r in failures] == [
        ("A1/2022-12-27/band_breach", "account A1 is held: no_price")
    ]
    assert listed["A3/2022-12-28/cash_short"]["status"] == "open"  # another household's


def test_fail_requests_when_no_reason_is_given_then_it_is_refused(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        repo.save_requests(
            connection,
            requests=[request("A1", date(2022, 12, 27), "band_breach", household="H1")],
            received_at=datetime.now(UTC),
        )
        with pytest.raises(ValidationError, match="needs its reason"):
            repo.fail_requests(connection, failures={"A1/2022-12-27/band_breach": ""})
