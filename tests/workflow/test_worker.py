"""The worker on the demo firm: a month of real prices replayed through the monitor becomes
household proposals, each request answered once; a request that comes again is skipped;
a household whose books are broken, or whose accounts are held, fails its requests with
why and does not stop the worker."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.bus.helpers import TEST_POLICY, NatsSpace, require_nats
from tests.workflow.worker_firm import (
    START,
    break_books,
    december,
    evening_before,
    household_proposals,
    load_demo,
    optimize,
    requests,
    until,
)
from typer.testing import CliRunner

from poise.bus.inprocess import InProcessBus
from poise.bus.port import Bus
from poise.cli import app
from poise.monitor.triggers import manual_request
from poise.store import repo
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.watching import MonitorService, price_event, request_event
from poise.workflow.worker import Handled, Result, WorkerService, answer_request


@pytest.mark.parametrize("bus_name", ["inprocess", "nats"])
def test_worker_when_a_month_of_prices_is_replayed_then_each_request_is_answered_once(
    bus_name: str, tmp_path: Path
) -> None:
    """December 2022 streams through the monitor; the worker beside it, on the same bus,
    plans each request's household. Every request raised — the evening before, and by
    the month's ticks — ends answered by a proposal of its own account, part of a
    household proposal of its own household, made for its time or later; and each is
    answered by one plan only, though plans answer several at once."""
    if bus_name == "nats":
        require_nats()
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    ticks = december(engine, load_demo(engine, tmp_path / "firm"))
    found = evening_before(engine)
    handled: list[Handled] = []
    space = NatsSpace()

    async def open_bus() -> Bus:
        if bus_name == "inprocess":
            return InProcessBus(policy=TEST_POLICY)
        return await space.connect()

    async def run() -> MonitorService:
        bus = await open_bus()
        monitor = MonitorService(engine, bus, found.watch)
        worker = WorkerService(engine, bus, optimize(), on_handled=handled.append)
        try:
            await worker.start(sweep=False)  # the bus alone
            await monitor.start(initial=found.requests)
            for tick in ticks:
                await bus.publish(price_event(tick))
            await monitor.wait_for(len(ticks), timeout=60)
            await until(
                lambda: monitor.published <= {h.request_id for h in handled},
                timeout=60,
                what="the worker taking every request",
            )
        finally:
            await worker.stop()
            await monitor.stop()
            await bus.close()
        return monitor

    try:
        monitor = asyncio.run(run())
    finally:
        if bus_name == "nats":
            asyncio.run(space.delete())
    raised = monitor.published
    stored = requests(engine)
    assert any(stored[i]["as_of"] > START for i in raised), "no tick raised a request"
    answered = [i for h in handled for i in h.answered]
    assert sorted(answered) == sorted(raised)  # each by one plan: none twice, none missing
    for request_id in raised:
        row = stored[request_id]
        assert row["status"] == "answered", row
        assert row["proposal_account"] == row["account_id"], row
        assert row["proposal_household"] == row["household_id"], row
        assert row["proposal_as_of"] >= row["as_of"], row
    plans = [h for h in handled if h.household_proposal_id is not None]
    assert sum(household_proposals(engine).values()) == len(plans)
    assert len(plans) < len(raised)  # a household's requests taken together
    assert {h.result for h in handled} == {Result.ANSWERED, Result.SKIPPED}


def test_answer_request_when_the_same_request_comes_again_then_it_is_skipped_and_planned_once(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """The monitor has stored a household's requests but one, whose event reaches the
    worker first: the worker stores it, plans the household once for all of them, and
    skips it when it comes again, and the others when they come."""
    load_demo(engine, tmp_path / "firm")
    found = evening_before(engine)
    by_household = Counter(r.household_id for r in found.requests)
    household, _ = by_household.most_common(1)[0]
    first, *others = [r for r in found.requests if r.household_id == household]
    assert others
    with engine.begin() as connection:
        repo.save_requests(
            connection,
            requests=[r.to_payload() for r in found.requests if r is not first],
            received_at=datetime.now(UTC),
        )

    one = answer_request(engine, first.to_payload(), optimize())
    again = answer_request(engine, first.to_payload(), optimize())
    rest = [answer_request(engine, r.to_payload(), optimize()) for r in others]

    assert one.result is Result.ANSWERED
    assert one.household_id == household
    assert one.as_of == max(r.as_of for r in [first, *others])
    assert sorted(one.answered) == sorted(r.request_id for r in [first, *others])
    stored = requests(engine)
    assert stored[first.request_id]["status"] == "answered"
    assert again.result is Result.SKIPPED
    assert again.reason.startswith("answered by ")
    assert [h.result for h in rest] == [Result.SKIPPED] * len(others)
    assert household_proposals(engine) == {household: 1}


def test_worker_when_a_households_books_are_broken_then_its_requests_fail_and_it_goes_on(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """One household's lot turns negative after its requests were raised and stored. The
    first of them to reach the worker fails them all, with the broken row named, and the
    others are skipped when they come: none is tried again. The worker goes on with the
    other households."""
    load_demo(engine, tmp_path / "firm")
    found = evening_before(engine)
    with engine.begin() as connection:  # as the monitor's poise-requests consumer does
        repo.save_requests(
            connection,
            requests=[r.to_payload() for r in found.requests],
            received_at=datetime.now(UTC),
        )
    broken = sorted({r.household_id or "" for r in found.requests})[0]
    account = break_books(engine, broken)
    handled: list[Handled] = []

    async def run() -> None:
        bus = InProcessBus(policy=TEST_POLICY)
        worker = WorkerService(engine, bus, optimize(), on_handled=handled.append)
        try:
            await worker.start(sweep=False)
            for request in found.requests:
                await bus.publish(request_event(request))
            ids = {r.request_id for r in found.requests}
            await until(
                lambda: {h.request_id for h in handled} == ids,
                timeout=60,
                what="the worker taking every request",
            )
            await asyncio.sleep(3 * TEST_POLICY.retry_delay)  # time for any retry to show
        finally:
            await worker.stop()
            await bus.close()

    asyncio.run(run())
    stored = requests(engine)
    mine = [r.request_id for r in found.requests if r.household_id == broken]
    assert mine
    for request_id in mine:
        row = stored[request_id]
        assert row["status"] == "failed", row
        assert f"household {broken}: its books are broken" in row["failure"], row
        assert f"account {account}" in row["failure"], row
    others = [r.request_id for r in found.requests if r.household_id != broken]
    assert others
    assert all(stored[i]["status"] == "answered" for i in others)
    assert set(Counter(h.request_id for h in handled).values()) == {1}  # none retried
    failing = [h for h in handled if h.result is Result.FAILED]
    assert [h.household_id for h in failing] == [broken]
    assert sorted(failing[0].failed) == sorted(mine)
    skipped = [h for h in handled if h.request_id in mine and h is not failing[0]]
    assert all(h.result is Result.SKIPPED for h in skipped)
    assert all(h.reason.startswith("failed: ValidationError: ") for h in skipped)


def test_answer_request_when_every_account_is_held_then_the_request_fails_with_the_hold(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """A request asked by hand in March 2023, when the firm's last prices are of December
    2022: every account of the household is held for stale prices, so nothing is
    proposed and the request fails saying so."""
    load_demo(engine, tmp_path / "firm")
    with engine.connect() as connection:
        account = repo.accounts(connection)[0]
    asked = manual_request(
        account_id=account.account_id,
        household_id=account.household_id,
        as_of=datetime(2023, 3, 1, 15, tzinfo=UTC),
        note="client called",
    )
    handled = answer_request(engine, asked.to_payload(), optimize())
    assert handled.result is Result.FAILED
    assert handled.household_proposal_id is None
    assert handled.reason.startswith(f"account {account.account_id} is not rebalanced: stale_price")
    row = requests(engine)[asked.request_id]
    assert (row["status"], row["failure"]) == ("failed", handled.reason)
    assert household_proposals(engine) == {}


def test_poise_worker_once_when_requests_are_open_then_it_answers_them_and_says_so(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    """``poise worker --once``: the requests open in the store, answered household by
    household, then a summary — and nothing left open."""
    load_demo(engine, tmp_path / "firm")
    found = evening_before(engine)
    with engine.begin() as connection:
        repo.save_requests(
            connection,
            requests=[r.to_payload() for r in found.requests],
            received_at=datetime.now(UTC),
        )
    done = CliRunner().invoke(app, ["worker", "--once", "--json", "--database-url", database_url])
    assert done.exit_code == 0, done.output
    households = {r.household_id for r in found.requests}
    assert json.loads(done.stdout) == {
        "taken": len(found.requests),
        "skipped": len(found.requests) - len(households),
        "proposals": len(households),
        "answered": len(found.requests),
        "failed": 0,
    }
    assert "INFO answered request=" in done.stderr
    assert {r["status"] for r in requests(engine).values()} == {"answered"}
