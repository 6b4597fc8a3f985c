"""A session machine driven by hand: the clock is set by the test, the actions carried
out at once, what was sent kept as fields for the test to read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import simplefix
from tests.execute.fix.wire import as_dict, frame

from poise.execute.fix.codec import Framer, format_timestamp
from poise.execute.fix.config import Role, SessionConfig
from poise.execute.fix.session import (
    Action,
    Advance,
    Deliver,
    Disconnect,
    Event,
    Resend,
    ResetStore,
    Send,
    SessionMachine,
)
from poise.execute.fix.store import MemoryStore, SessionStore

T0 = datetime(2026, 12, 7, 14, 30, tzinfo=UTC)
BROKER = SessionConfig(sender_comp_id="BROKER", target_comp_id="POISE", role=Role.ACCEPTOR)
CLIENT = SessionConfig(
    sender_comp_id="POISE", target_comp_id="BROKER", role=Role.INITIATOR, heartbeat_interval=30
)


class Harness:
    def __init__(
        self,
        config: SessionConfig = BROKER,
        store: SessionStore | None = None,
        refused: set[int] | None = None,
    ) -> None:
        self.config = config
        self.store = store or MemoryStore()
        sender, target = self.store.load()
        self.machine = SessionMachine(
            config,
            next_sender=sender,
            next_target=target,
            stored=self.store.outbound,
            refused=refused,
        )
        self.now = T0
        self.sent: list[dict[int, str]] = []
        self.delivered: list[tuple[int, str, bool]] = []  # seq, ClOrdID, possdup
        self.events: list[Event] = []
        self.closed: str | None = None

    def run(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Send(message=message):
                    seq, raw = self.machine.seal(message, self.now)
                    self.store.save_outbound(seq, raw)
                    self.sent.append(as_dict(raw))
                case Resend(raw=raw):
                    self.sent.append(as_dict(raw))
                case Deliver(message=message, seq=seq, possdup=possdup):
                    self.delivered.append((seq, message.get(11).decode(), possdup))
                case Advance(next_target=target):
                    self.store.set_next_target(target)
                case ResetStore():
                    self.store.reset()
                case Disconnect(reason=reason):
                    self.closed = reason
                case Event():
                    self.events.append(action)

    def connect(self) -> None:
        self.run(self.machine.connected(self.now))

    def receive(self, raw: bytes, arrived: datetime | None = None) -> None:
        for item in Framer().feed(raw):
            self.run(self.machine.receive(item, self.now, arrived=arrived))

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.run(self.machine.tick(self.now))

    def send_app(self, message: Any) -> int:
        seq, raw = self.machine.seal(message, self.now)
        self.store.save_outbound(seq, raw)
        self.sent.append(as_dict(raw))
        return seq

    def take(self) -> list[dict[int, str]]:
        sent, self.sent = self.sent, []
        return sent


class Counterparty:
    """The other side's messages, written field by field."""

    def __init__(self, harness: Harness, sender: str = "POISE", target: str = "BROKER") -> None:
        self.harness = harness
        self.sender = sender
        self.target = target

    def message(
        self,
        msg_type: str,
        seq: int,
        *fields: str,
        possdup: bool = False,
        original: datetime | None = None,
        sent: datetime | None = None,
        header: tuple[str, ...] | None = None,
    ) -> bytes:
        when = format_timestamp(sent or self.harness.now)
        if header is None:
            header = (f"49={self.sender}", f"56={self.target}", f"34={seq}", f"52={when}")
        flags = ("43=Y",) if possdup else ()
        if original is not None:
            flags += (f"122={format_timestamp(original)}",)
        return frame(f"35={msg_type}", *header, *flags, *fields)

    def logon(self, seq: int = 1, *fields: str) -> bytes:
        return self.message("A", seq, "98=0", "108=30", *fields)

    def order(self, seq: int, cl_ord_id: str, **options: Any) -> bytes:
        return self.message(
            "D", seq, f"11={cl_ord_id}", "1=FIRM-1", "55=AAPL", "54=1",
            f"60={format_timestamp(self.harness.now)}", "38=100", "40=1", **options,
        )  # fmt: skip


def app_message(cl_ord_id: str) -> Any:
    message = simplefix.FixMessage()
    message.append_pair(35, "8", header=True)
    for tag, value in ((37, "O-1"), (11, cl_ord_id), (17, f"E-{cl_ord_id}"), (150, "0")):
        message.append_pair(tag, value)
    return message


def logged_on(config: SessionConfig = BROKER) -> tuple[Harness, Counterparty]:
    """An acceptor that has answered the counterparty's Logon (its seq 1 and ours 1)."""
    harness = Harness(config)
    peer = Counterparty(harness)
    harness.connect()
    harness.receive(peer.logon())
    harness.take()
    return harness, peer
