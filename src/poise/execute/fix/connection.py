"""The session on a socket: an asyncio runner around ``SessionMachine``, and the two
ways to get a connection for it (``Initiator`` connects and reconnects; ``Acceptor``
listens).

The runner reads, frames, hands the machine each frame with the time, and carries out
the actions it returns, in order: an outbound message is sealed, stored
(``SessionStore.save_outbound``) and only then written; an inbound application message
is handed to ``Application.on_message`` and only then is the next inbound sequence
number stored — so a crash in between means the message comes again (by resend, with
``possdup``), and the application must be idempotent. If ``on_message`` raises, the
connection is dropped without counting the message: it comes again after reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from poise.execute.fix.codec import ADMIN_TYPES, Frame, Framer, Garbled, Tag, field, to_text
from poise.execute.fix.config import SessionConfig
from poise.execute.fix.errors import FixError, NotLoggedOnError
from poise.execute.fix.session import (
    Action,
    Advance,
    Deliver,
    Disconnect,
    Event,
    EventKind,
    Resend,
    ResetStore,
    Send,
    SessionMachine,
)
from poise.execute.fix.store import SessionStore

__all__ = ["Acceptor", "Application", "Clock", "Initiator", "Session", "utc_now"]

log = logging.getLogger("poise.fix")

Clock = Callable[[], datetime]
_READ_SIZE = 1 << 16  # what one read takes, unless the session is given another size
_LONGEST_WAIT = 1.0  # seconds a read waits before the timers are looked at again


def utc_now() -> datetime:
    return datetime.now(UTC)


class Application(Protocol):
    """What a session calls: the side of the gateway or broker that knows orders."""

    async def on_logon(self) -> None:
        """The session is logged on; ``Session.send`` works from now."""
        ...

    async def on_logout(self, reason: str) -> None:
        """The session was logged on and no longer is (logged out, or the connection
        was lost); ``reason`` says which."""
        ...

    async def on_message(self, message: Any, *, possdup: bool) -> None:
        """An application message in its turn (``message`` a ``simplefix.FixMessage``).
        ``possdup``: sent before (PossDupFlag(43)=Y); it may have been handled already.
        Called before the message counts as received: it may come again after a crash.

        An application may also have ``async on_messages(messages)``, a list of
        ``(message, possdup)`` in their turn: the messages that arrived together are
        then handed over in one call (one transaction for them all, say), with the same
        promise — none counts as received before it returns."""
        ...


class Session:
    """One FIX session over a connection at a time, its numbers kept in ``store``.

    ``observer`` sees every session event (log lines, tests). ``clock`` gives the time
    for SendingTime and the timers.
    """

    def __init__(
        self,
        config: SessionConfig,
        store: SessionStore,
        application: Application,
        *,
        clock: Clock = utc_now,
        observer: Callable[[Event], None] | None = None,
        read_size: int = _READ_SIZE,
    ) -> None:
        self.config = config
        self.read_size = read_size  # the most one read takes: what arrives together
        self.store = store
        self.application = application
        self._clock = clock
        self._observer = observer
        self._machine: SessionMachine | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[Any] | None = None
        self._closing: str | None = None
        self._lock = asyncio.Lock()
        self._logged_on = asyncio.Event()
        self._idle = asyncio.Event()
        self._refused: set[int] = set()  # see SessionMachine.refused
        self._idle.set()

    @property
    def connected(self) -> bool:
        return self._machine is not None

    @property
    def logged_on(self) -> bool:
        return self._machine is not None and self._machine.logged_on and self._closing is None

    async def wait_logged_on(self, timeout: float | None = None) -> None:
        """Until the session is logged on (``TimeoutError`` after ``timeout`` seconds)."""
        await asyncio.wait_for(self._logged_on.wait(), timeout)

    async def wait_disconnected(self, timeout: float | None = None) -> None:
        """Until no connection is open (``TimeoutError`` after ``timeout`` seconds)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def send(self, message: Any, *, extra: object = None) -> int:
        """Send an application message; its MsgSeqNum is returned.

        ``message`` is a ``simplefix.FixMessage`` with its MsgType(35) and body; the
        session writes the header. The message is stored (with ``extra``, for the
        store) before it is written: once this returns, it reaches the counterparty now
        or, if the connection fails, when it asks for it again. Not logged on:
        ``NotLoggedOnError``, and nothing is stored.
        """
        msg_type = field(message, Tag.MsgType)
        if msg_type is None or msg_type in ADMIN_TYPES:
            raise FixError(f"MsgType {msg_type} is the session's own, not the application's")
        return await self._send(message, extra, application=True)

    async def send_many(self, messages: Sequence[tuple[Any, object]]) -> list[int]:
        """Send application messages (each with its ``extra``) as :meth:`send` does, in
        order; stored together where the store can (``save_outbound_many``: one durable
        write for them all) and written in one go. Their MsgSeqNums."""
        for message, _ in messages:
            msg_type = field(message, Tag.MsgType)
            if msg_type is None or msg_type in ADMIN_TYPES:
                raise FixError(f"MsgType {msg_type} is the session's own, not the application's")
        together = getattr(self.store, "save_outbound_many", None)
        if together is None:
            return [await self.send(message, extra=extra) for message, extra in messages]
        async with self._lock:
            machine = self._machine
            if machine is None or not machine.logged_on or self._closing:
                raise NotLoggedOnError(f"session {self.config.key} is not logged on")
            sealed = [(*machine.seal(m, self._clock()), extra) for m, extra in messages]
            try:
                together(sealed)
            except BaseException:
                for seq, _, _ in reversed(sealed):
                    machine.unseal(seq)
                raise
            await self._write(b"".join(raw for _, raw, _ in sealed))
            return [seq for seq, _, _ in sealed]

    async def logout(self, text: str = "") -> None:
        """Log out: a Logout, and the connection closed when the counterparty answers
        (or after the logout timeout). Not logged on: nothing happens."""
        machine = self._machine
        if machine is None or not machine.logged_on:
            return
        await self._execute(machine.logout(text, self._clock()))
        if asyncio.current_task() is not self._reader_task:
            await self._idle.wait()

    def disconnect(self, reason: str) -> None:
        """Drop the connection now, without a Logout."""
        self._close(reason)

    async def run(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes = b""
    ) -> str:
        """Be the session on this connection until it ends; why it ended is returned.
        ``first``: bytes already read from the connection (an acceptor reads the first
        before it gives the connection the session)."""
        if self._machine is not None:
            raise FixError(f"session {self.config.key} is already connected")
        next_sender, next_target = self.store.load()
        machine = SessionMachine(
            self.config,
            next_sender=next_sender,
            next_target=next_target,
            stored=self.store.outbound,
            refused=self._refused,
        )
        self._machine, self._writer, self._closing = machine, writer, None
        self._reader_task = asyncio.current_task()
        self._idle.clear()
        framer = Framer()
        try:
            await self._execute(machine.connected(self._clock()))
            if first and self._closing is None:
                await self._frames(framer.feed(first), machine, self._clock())
            while self._closing is None:
                data = await self._read(reader, machine)
                arrived = self._clock()
                if data == b"":
                    self._close("connection closed by the counterparty")
                await self._frames(framer.feed(data or b""), machine, arrived)
                if self._closing is None:
                    await self._execute(machine.tick(self._clock()))
        except OSError as exc:
            self._close(f"connection lost: {exc}")
        finally:
            reason = self._closing or "stopped"
            was_logged_on = self._logged_on.is_set()
            machine.disconnected()
            self._logged_on.clear()
            self._machine = self._writer = self._reader_task = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._idle.set()
            log.info("%s disconnected: %s", self.config.key, reason)
            if was_logged_on:
                try:
                    await self.application.on_logout(reason)
                except Exception:
                    log.exception("%s: the application failed on logout", self.config.key)
        return reason

    async def _read(self, reader: asyncio.StreamReader, machine: SessionMachine) -> bytes | None:
        """What arrives before the machine's next deadline; None if nothing did."""
        deadline = machine.next_deadline()
        wait = _LONGEST_WAIT
        if deadline is not None:
            wait = min(max((deadline - self._clock()).total_seconds(), 0.01), _LONGEST_WAIT)
        try:
            return await asyncio.wait_for(reader.read(self.read_size), wait)
        except TimeoutError:
            return None

    async def _execute(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Send(message=message):
                    if self._closing is None:
                        await self._send(message, None, application=False)
                case Resend(raw=raw):
                    if self._closing is None:
                        async with self._lock:
                            await self._write(raw)
                case Deliver():
                    if not await self._deliver(action):
                        return
                case Advance(next_target=next_target):
                    self.store.set_next_target(next_target)
                case ResetStore():
                    self.store.reset()
                case Disconnect(reason=reason):
                    self._close(reason)
                    return
                case Event():
                    if not await self._event(action):
                        return

    async def _frames(
        self, items: list[Frame | Garbled], machine: SessionMachine, arrived: datetime
    ) -> None:
        """The frames of one read, in turn: application messages (and the sequence
        numbers they advance) held back and handed over together, before anything else
        the machine does and at the end."""
        held: list[Action] = []
        for item in items:
            log.debug("%s in: %s", self.config.key, to_text(item.raw))
            actions = machine.receive(item, self._clock(), arrived=arrived)
            if all(isinstance(a, Deliver | Advance) for a in actions):
                held += actions
                continue
            for action in actions:  # e.g. a gap filled: the messages that waited, in turn
                if isinstance(action, Deliver | Advance):
                    held.append(action)
                    continue
                if not await self._hand_over(held):
                    return
                held = []
                await self._execute([action])
                if self._closing is not None:
                    return
        if held and self._closing is None:
            await self._hand_over(held)

    async def _hand_over(self, held: list[Action]) -> bool:
        """The application messages of one read handed to the application together
        (``on_messages``, where it has one: one transaction for them all), then the
        next inbound sequence number stored once — after, never before, so a crash in
        between means they come again."""
        deliveries = [a for a in held if isinstance(a, Deliver)]
        together = getattr(self.application, "on_messages", None)
        if deliveries and together is not None:
            try:
                await together([(d.message, d.possdup) for d in deliveries])
            except Exception as exc:
                log.exception("%s: the application failed on a batch", self.config.key)
                self._close(f"the application failed on MsgSeqNum {deliveries[0].seq}…: {exc}")
                return False
        else:
            for delivery in deliveries:
                if not await self._deliver(delivery):
                    return False
        advances = [a for a in held if isinstance(a, Advance)]
        if advances:
            self.store.set_next_target(max(a.next_target for a in advances))
        return True

    async def _deliver(self, action: Deliver) -> bool:
        try:
            await self.application.on_message(action.message, possdup=action.possdup)
        except Exception as exc:
            log.exception("%s: the application failed on MsgSeqNum %d", self.config.key, action.seq)
            self._close(f"the application failed on MsgSeqNum {action.seq}: {exc}")
            return False
        return True

    async def _event(self, event: Event) -> bool:
        level = logging.WARNING if event.kind in _WARNINGS else logging.INFO
        log.log(level, "%s %s: %s", self.config.key, event.kind.value, event.text)
        if self._observer is not None:
            self._observer(event)
        if event.kind is EventKind.LOGGED_ON:
            self._logged_on.set()
            try:
                await self.application.on_logon()
            except Exception as exc:
                log.exception("%s: the application failed on logon", self.config.key)
                self._close(f"the application failed on logon: {exc}")
                return False
        return True

    async def _send(self, message: Any, extra: object, *, application: bool) -> int:
        async with self._lock:
            machine = self._machine
            if application and (machine is None or not machine.logged_on or self._closing):
                raise NotLoggedOnError(f"session {self.config.key} is not logged on")
            if machine is None:
                raise NotLoggedOnError(f"session {self.config.key} is not connected")
            seq, raw = machine.seal(message, self._clock())
            try:
                self.store.save_outbound(seq, raw, extra)
            except BaseException:
                machine.unseal(seq)
                raise
            await self._write(raw)
            return seq

    async def _write(self, raw: bytes) -> None:
        writer = self._writer
        if writer is None or self._closing is not None:
            return
        log.debug("%s out: %s", self.config.key, to_text(raw))
        try:
            writer.write(raw)
            await writer.drain()
        except OSError as exc:
            self._close(f"connection lost: {exc}")

    def _close(self, reason: str) -> None:
        if self._closing is None:
            self._closing = reason
        if self._writer is not None:
            self._writer.close()


_WARNINGS = frozenset({EventKind.GARBLED, EventKind.REJECTED, EventKind.REJECT_RECEIVED})


class Initiator:
    """Connects the session to ``host``:``port``, and again after each disconnection
    (every ``config.reconnect_interval`` seconds) until stopped; the sequence numbers
    continue from the store."""

    def __init__(self, session: Session, host: str, port: int) -> None:
        self.session = session
        self.host = host
        self.port = port
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        """Run in the background (the task is returned; ``stop`` ends it)."""
        self._stop.clear()
        self._task = asyncio.create_task(self.run(), name=f"fix {self.session.config.key}")
        return self._task

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, limit=self.session.read_size
                )
            except OSError as exc:
                log.info("%s cannot connect: %s", self.session.config.key, exc)
            else:
                if self._stop.is_set():
                    writer.close()
                    break
                await self.session.run(reader, writer)
            if self._stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.session.config.reconnect_interval)

    async def stop(self, text: str = "") -> None:
        """Log out (if logged on), stop reconnecting, and wait for the end."""
        self._stop.set()
        await self.session.logout(text)
        self.session.disconnect("stopped")
        if self._task is not None:
            await self._task
            self._task = None


class Acceptor:
    """Listens on ``host``:``port`` (0: any free port; ``port`` says which after
    ``start``) for the session's counterparty. A connection is given the session only
    when its first bytes arrive (within the logon timeout), as a FIX engine binds a
    connection to its session at the Logon: one that closes or stays silent — a port
    probe, a load balancer's health check — never holds the session. One connection at
    a time: another that speaks while the session is connected is closed at once."""

    def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 0) -> None:
        self.session = session
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._unheard: set[asyncio.Task[Any]] = set()  # connections yet to speak

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, limit=self.session.read_size
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s listening on %s:%d", self.session.config.key, self.host, self.port)
        return self.port

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        task = asyncio.current_task()
        if task is not None:
            self._unheard.add(task)
        try:
            first = await asyncio.wait_for(
                reader.read(self.session.read_size), self.session.config.logon_timeout
            )
        except (TimeoutError, OSError):
            first = b""
        except asyncio.CancelledError:  # the acceptor stopped
            writer.close()
            raise
        finally:
            if task is not None:
                self._unheard.discard(task)
        if not first:
            log.info("%s: %s closed or said nothing", self.session.config.key, peer)
            writer.close()
            return
        if self.session.connected:
            log.warning("%s: refused %s, the session is connected", self.session.config.key, peer)
            writer.close()
            return
        if task is not None:
            self._connections.add(task)
        try:
            await self.session.run(reader, writer, first)
        finally:
            if task is not None:
                self._connections.discard(task)

    async def stop(self, text: str = "") -> None:
        """Log out (if logged on), close the connection and stop listening."""
        await self.session.logout(text)
        self.session.disconnect("stopped")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for unheard in list(self._unheard):
            unheard.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
