"""What happens, as it happens: rebalance requests raised and answered, and runs'
progress, told to open pages and API callers as server-sent events.

One :class:`Feed` a server process. While anyone listens it reads the store once every
:data:`POLL_EVERY` seconds — the requests received since it last looked, those it has
told of that are still open, the runs in progress — so it tells of what any process
did: the monitor and worker of ``poise watch``, a run on the command line, a run
another server worker started. Where the bus crosses processes (NATS), it also
listens to the monitor's requests on the bus, and tells of each as it is raised,
before a worker has stored it. A request is told of once as raised, and again when it
is answered or fails.

Each listener is told only what it may see: a request of a household in its scope; a
run, if its role sees the firm. A listener that falls too far behind (a connection
that stopped reading) is dropped; the browser's ``EventSource`` reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from poise.domain.users import FIRM_WIDE
from poise.store import repo
from poise.workflow.documents import jsonable

if TYPE_CHECKING:
    import sqlalchemy as sa

    from poise.bus.events import Event as BusEvent
    from poise.bus.port import Bus, Subscription
    from poise.domain.users import Role, Scope
    from poise.settings import Settings

__all__ = ["Feed", "Told", "end_streams_on_exit", "sse"]

log = logging.getLogger("poise.api.live")

POLL_EVERY = 1.0  # seconds between the store's reads, while anyone listens
OVERLAP = timedelta(seconds=10)  # re-read back this far: a slow commit is not missed
RECENT = timedelta(minutes=1)  # a run that ended this recently is told to a new listener
BACKLOG = 1_000  # events a listener may fall behind before it is dropped
REMEMBERED = 10_000  # requests remembered as told, so that each is told once a status


@dataclass(frozen=True, slots=True)
class Told:
    """One event: its kind (``request``, ``run``), what it says, and the household it
    is of (None: the firm's — a run)."""

    kind: str
    data: Mapping[str, Any]
    household: str | None


def sse(kind: str, data: Mapping[str, Any] | str, *, event_id: str | None = None) -> str:
    """One server-sent event, as the text of the stream carries it."""
    text = data if isinstance(data, str) else json.dumps(jsonable(data), sort_keys=True)
    head = f"id: {event_id}\n" if event_id else ""
    lines = "".join(f"data: {line}\n" for line in text.split("\n"))
    return f"{head}event: {kind}\n{lines}\n"


class _Listener:
    def __init__(self, scope: Scope, role: Role) -> None:
        self.scope = scope
        self.firm = role in FIRM_WIDE
        self.queue: asyncio.Queue[Told | None] = asyncio.Queue(BACKLOG)

    def offer(self, told: Told) -> bool:
        """Queue ``told`` if the listener may see it; False when it has fallen behind."""
        if told.household is None and not self.firm:
            return True
        if told.household is not None and not self.scope.sees(told.household):
            return True
        try:
            self.queue.put_nowait(told)
        except asyncio.QueueFull:
            return False
        return True


class Feed:
    """The events of one server process: see the module."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._listeners: set[_Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._told: OrderedDict[str, str] = OrderedDict()  # request → the status told
        self._runs: dict[str, tuple[str, int, int]] = {}  # run → status, done, failed
        self._latest: dict[str, Told] = {}  # run → what was last told of it
        self._since = datetime.now(UTC)
        self._ended = False

    @contextlib.asynccontextmanager
    async def listening(
        self, scope: Scope, role: Role
    ) -> AsyncIterator[asyncio.Queue[Told | None]]:
        """A queue of every event ``scope`` and ``role`` may see, from now on; None in
        it ends the stream (the listener fell too far behind, or the server stops)."""
        listener = _Listener(scope, role)
        if self._ended:
            listener.queue.put_nowait(None)
        for told in self._latest.values():  # how the runs moving now stand, to begin with
            listener.offer(told)
        self._listeners.add(listener)
        if self._task is None or self._task.done():
            self._since = datetime.now(UTC) - OVERLAP
            self._task = asyncio.create_task(self._watch(), name="poise.live")
        try:
            yield listener.queue
        finally:
            self._listeners.discard(listener)

    def end(self) -> None:
        """End every stream now, and each opened from now on: the server is stopping."""
        self._ended = True
        for listener in list(self._listeners):
            with contextlib.suppress(asyncio.QueueFull):
                listener.queue.put_nowait(None)

    def _tell(self, told: Told) -> None:
        for listener in list(self._listeners):
            if not listener.offer(told):
                log.warning("a listener fell %d events behind: dropped", BACKLOG)
                self._listeners.discard(listener)
                with contextlib.suppress(asyncio.QueueFull):
                    listener.queue.put_nowait(None)

    async def _watch(self) -> None:
        """Read the store while anyone listens (and the bus, where it crosses processes)."""
        heard = await self._hear()
        try:
            first = True
            while self._listeners:
                try:
                    for told in await asyncio.to_thread(self._read, first=first):
                        self._tell(told)
                    first = False
                except Exception:  # the store away a moment: try again at the next tick
                    log.exception("the live feed could not read the store")
                await asyncio.sleep(POLL_EVERY)
        finally:
            if heard is not None:
                bus, subscription = heard
                with contextlib.suppress(Exception):
                    await subscription.stop()
                    await bus.close()

    async def _hear(self) -> tuple[Bus, Subscription] | None:
        """The monitor's requests on the bus, when the bus crosses processes."""
        if self._settings.bus == "inprocess":
            return None
        from poise.bus import REQUESTS  # noqa: PLC0415 - the bus loads only when it is used
        from poise.bus.registry import open_bus  # noqa: PLC0415

        try:
            bus = await open_bus(self._settings.bus, url=self._settings.nats_url)
            subscription = await bus.listen(f"{REQUESTS}.>", handler=self._raised)
        except Exception:
            log.exception("the live feed cannot listen to the bus: it reads the store only")
            return None
        return bus, subscription

    async def _raised(self, event: BusEvent) -> None:
        """A request the monitor raised, as the bus carries it."""
        payload = dict(event.payload)
        request_id = str(payload.get("request_id", event.event_id))
        if request_id in self._told:
            return
        self._remember(request_id, "open")
        data = {
            "request_id": request_id,
            "account_id": payload.get("account_id"),
            "household_id": payload.get("household_id"),
            "reasons": payload.get("reasons", []),
            "as_of": payload.get("as_of"),
            "status": "open",
            "answered_by": None,
        }
        self._tell(Told("request", data, payload.get("household_id")))

    def _remember(self, request_id: str, status: str) -> None:
        self._told[request_id] = status
        self._told.move_to_end(request_id)
        while len(self._told) > REMEMBERED:
            self._told.popitem(last=False)

    def _read(self, *, first: bool) -> list[Told]:
        """What changed in the store since the last read. The first read only notes the
        requests there were before anyone listened, and tells how each run in progress
        (or just ended) stands."""
        told: list[Told] = []
        with self._engine.connect() as connection:
            new = repo.requests_received(connection, after=self._since)
            watched = [r for r, status in self._told.items() if status == "open"]
            now = repo.requests_now(connection, ids=watched) if watched else []
            runs = repo.runs_moving(connection, since=datetime.now(UTC) - RECENT)
        if new:
            self._since = max(r["received_at"] for r in new) - OVERLAP
        for request in [*now, *new]:
            request_id, status = request["request_id"], request["status"]
            if self._told.get(request_id) == status:
                continue
            self._remember(request_id, status)
            data = {k: v for k, v in request.items() if k not in ("household", "received_at")}
            if not first:
                told.append(Told("request", data, request["household"]))
        moving = {run.run_id for run in runs}
        for run_id in [r for r in self._latest if r not in moving]:  # ended a while ago
            del self._latest[run_id]
        for run in runs:
            seen = (run.status, run.done, run.failed)
            if self._runs.get(run.run_id) == seen:
                continue
            self._runs[run.run_id] = seen
            data = {"run_id": run.run_id, "status": run.status, "households": run.households,
                    "done": run.done, "failed": run.failed, "started_at": run.started_at,
                    "finished_at": run.finished_at}  # fmt: skip
            self._latest[run.run_id] = Told("run", data, None)
            told.append(self._latest[run.run_id])  # even at first: a run ending now is news
        return told

    async def close(self) -> None:
        """Stop: every listener's stream ends, and the store is read no more."""
        self.end()
        self._listeners.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def end_streams_on_exit(feed: Feed, loop: asyncio.AbstractEventLoop) -> None:
    """End ``feed``'s streams as soon as the server is told to stop (SIGTERM, Ctrl-C),
    before it waits for the requests in progress to finish — an open stream would hold
    it for the whole grace period. Only where signals can be caught (the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for number in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(number)

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(feed.end)
            if callable(previous):
                previous(signum, frame)

        signal.signal(number, handler)
