"""Server-sent events from a real ``poise serve``: a request the monitor raises and a
run's progress reach an open stream as they happen — each only to those who may see
it — and a stream ends when the server is told to stop."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.api.reads_firm import AS_OF, add_people, build
from tests.processes import free_port, start_poise, wait_ready

from poise.api.app import API_PREFIX
from poise.api.live import sse
from poise.domain.users import Role
from poise.monitor.triggers import manual_request
from poise.store import repo

PEOPLE = {
    "adviser_h1": (Role.ADVISER, {"households": ["H1"]}),
    "adviser_h2": (Role.ADVISER, {"households": ["H2"]}),
    "operations": (Role.OPERATIONS, {}),
}
WAIT = 60.0  # seconds an event may take to arrive before the test gives up


@dataclass(frozen=True)
class Served:
    base: str
    engine: sa.Engine
    tokens: dict[str, str]
    process: object


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("events")
    engine, _ = build(folder)
    tokens = add_people(engine, PEOPLE)
    port = free_port()
    process = start_poise("serve", "--port", str(port), database_url=str(engine.url),
                          cwd=folder, settings={"POISE_WORKERS": "1"})  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        yield Served(base, engine, tokens, process)
    finally:
        process.terminate()
        process.communicate(timeout=60)
        engine.dispose()


class Stream:
    """An open event stream, read on a thread: its events, as they come."""

    def __init__(self, base: str, token: str, seconds: int = 120) -> None:
        self.events: queue.Queue[tuple[str, dict[str, object]]] = queue.Queue()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(base, token, seconds), daemon=True)
        self._thread.start()
        assert self._ready.wait(WAIT), "the stream did not open"

    def _read(self, base: str, token: str, seconds: int) -> None:
        url = f"{base}{API_PREFIX}/events?seconds={seconds}"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.stream("GET", url, headers=headers, timeout=None) as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            kind, data = "", ""
            for line in answer.iter_lines():
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data += line.removeprefix("data: ")
                elif not line and kind:
                    self.events.put((kind, json.loads(data)))
                    if kind == "ready":
                        self._ready.set()
                    kind, data = "", ""
        self.events.put(("end", {}))

    def next(self, kind: str, until: object = None) -> dict[str, object]:
        """The next event of ``kind`` (for which ``until(data)`` holds, if given)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                got, data = self.events.get(timeout=1)
            except queue.Empty:
                continue
            if got == kind and (until is None or until(data)):  # type: ignore[operator]
                return data
            assert got != "end", f"the stream ended before a {kind} event"
        raise AssertionError(f"no {kind} event within {WAIT}s")

    def kinds_so_far(self) -> list[tuple[str, dict[str, object]]]:
        found = []
        while not self.events.empty():
            found.append(self.events.get())
        return found


def raise_request(engine: sa.Engine, account_id: str, household_id: str, days: int) -> str:
    """A request stored as the worker stores the monitor's."""
    raised = manual_request(account_id=account_id, household_id=household_id,
                            as_of=AS_OF + timedelta(days=days), note="")  # fmt: skip
    with engine.begin() as connection:
        repo.save_requests(connection, requests=[raised.to_payload()],
                           received_at=repo_now())  # fmt: skip
    return raised.request_id


def repo_now() -> object:
    from datetime import UTC, datetime  # noqa: PLC0415

    return datetime.now(UTC)


def test_events_when_a_request_is_raised_then_those_who_see_its_household_are_told(
    served: Served,
) -> None:
    h1 = Stream(served.base, served.tokens["adviser_h1"])
    h2 = Stream(served.base, served.tokens["adviser_h2"])
    ops = Stream(served.base, served.tokens["operations"])
    time.sleep(1.5)  # the feed has read where things stand
    request_id = raise_request(served.engine, "10000001", "H1", days=1)
    seen = h1.next("request", lambda d: d["request_id"] == request_id)
    assert seen["status"] == "open"
    assert seen["account_id"] == "10000001"
    assert ops.next("request", lambda d: d["request_id"] == request_id)["status"] == "open"
    other = raise_request(served.engine, "10000003", "H2", days=2)  # a marker for H2's
    h2.next("request", lambda d: d["request_id"] == other)
    assert all(d.get("request_id") != request_id for _, d in h2.kinds_so_far())


def test_events_when_a_run_goes_then_the_firm_wide_roles_see_its_progress_to_the_end(
    served: Served,
) -> None:
    ops = Stream(served.base, served.tokens["operations"])
    adviser = Stream(served.base, served.tokens["adviser_h1"])
    time.sleep(1.5)
    started = httpx.post(
        f"{served.base}{API_PREFIX}/runs",
        json={"selection": {"all": True}, "as_of": AS_OF.date().isoformat()},
        headers={"Authorization": f"Bearer {served.tokens['operations']}"},
        timeout=WAIT,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    ended = ops.next("run", lambda d: d["run_id"] == run_id and d["status"] != "running")
    assert ended == {**ended, "status": "finished", "households": 2, "done": 2, "failed": 0}
    marker = raise_request(served.engine, "10000001", "H1", days=3)
    adviser.next("request", lambda d: d["request_id"] == marker)
    assert not [d for kind, d in adviser.kinds_so_far() if kind == "run"]  # not the firm's


def test_events_when_asked_for_no_time_then_ready_and_the_end(served: Served) -> None:
    answer = httpx.get(
        f"{served.base}{API_PREFIX}/events?seconds=0",
        headers={"Authorization": f"Bearer {served.tokens['adviser_h1']}"},
        timeout=WAIT,
    )
    assert answer.status_code == 200
    ready = sse("ready", {"firm": False, "households": ["H1"]})
    assert answer.text == f"retry: 3000\n\n{ready}"


def test_events_when_the_server_is_told_to_stop_then_an_open_stream_ends_at_once(
    tmp_path: Path,
) -> None:
    engine, _ = build(tmp_path)
    tokens = add_people(engine, {"operations": (Role.OPERATIONS, {})})
    port = free_port()
    process = start_poise("serve", "--port", str(port), database_url=str(engine.url),
                          cwd=tmp_path)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        stream = Stream(base, tokens["operations"], seconds=3600)
        process.send_signal(signal.SIGTERM)
        stream.next("end")
        _, stderr = process.communicate(timeout=60)
        assert process.returncode in (0, -signal.SIGTERM)
        # Not held open until uvicorn gave up waiting and cancelled it.
        assert "timeout graceful shutdown exceeded" not in stderr.lower(), stderr
        assert "shutdown complete" in stderr.lower()
    finally:
        if process.poll() is None:
            process.kill()
        engine.dispose()


def test_feed_when_the_bus_crosses_processes_then_a_request_is_told_before_it_is_stored(
    tmp_path: Path,
) -> None:
    import asyncio  # noqa: PLC0415

    from tests.bus.helpers import NATS_URL, require_nats  # noqa: PLC0415

    from poise.api.live import Feed  # noqa: PLC0415
    from poise.bus.registry import open_bus  # noqa: PLC0415
    from poise.domain.users import Scope  # noqa: PLC0415
    from poise.settings import Settings  # noqa: PLC0415
    from poise.workflow.watching import request_event  # noqa: PLC0415

    require_nats()
    engine, _ = build(tmp_path)
    raised = manual_request(account_id="10000001", household_id="H1",
                            as_of=AS_OF + timedelta(days=9), note="")  # fmt: skip

    async def scenario() -> tuple[str, str, bool]:
        feed = Feed(engine, Settings(bus="nats", nats_url=NATS_URL))
        bus = await open_bus("nats", url=NATS_URL)
        try:
            h1 = feed.listening(Scope(households=frozenset({"H1"})), Role.ADVISER)
            h2 = feed.listening(Scope(households=frozenset({"H2"})), Role.ADVISER)
            async with h1 as mine, h2 as theirs:
                await asyncio.sleep(1.0)  # the feed is listening to the bus
                await bus.publish(request_event(raised))
                told = await asyncio.wait_for(mine.get(), timeout=WAIT)
                assert told is not None
                return told.kind, str(told.data["request_id"]), theirs.empty()
        finally:
            await bus.close()
            await feed.close()

    kind, request_id, others_untold = asyncio.run(scenario())
    assert (kind, request_id) == ("request", raised.request_id)
    assert others_untold  # H2's adviser is not told of H1's request
    with engine.connect() as connection:  # told from the bus: no worker has stored it
        assert not repo.requests_now(connection, ids=[raised.request_id])
    engine.dispose()
