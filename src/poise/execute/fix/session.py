"""One FIX 4.4 session as a state machine: what arrives, and the time, in; what to do
out. No socket, no store, no clock: the runner (``connection``) reads and writes, keeps
what the actions say to keep, and calls the application.

What it does, as the FIX 4.4 session protocol asks:

- Logon (A) and Logout (5), HeartBtInt(108), ResetSeqNumFlag(141) when configured or
  asked for; the first message on a connection must be a Logon from the configured
  counterparty, else the connection is dropped without a word.
- Heartbeats (0) when nothing was sent for a heartbeat interval; a TestRequest (1) when
  nothing arrived for a fifth more than one; the connection dropped when that goes
  unanswered as long again. A TestRequest is answered with its TestReqID(112).
- MsgSeqNum(34): too high, a ResendRequest (2) for the gap, and the messages that came
  early kept until the gap is filled, then processed in order; too low without
  PossDupFlag(43)=Y, a Logout saying so and the connection dropped; a PossDup already
  received is ignored, one still needed processed (the application is told it is a
  possible duplicate).
- ResendRequest answered from the messages sent: application messages again with
  PossDupFlag=Y and OrigSendingTime(122), session messages as SequenceReset-GapFill (4,
  GapFillFlag(123)=Y, NewSeqNo(36)). A ResendRequest that arrives early is answered at
  once (both sides may ask at the same time). SequenceReset-Reset is honoured whatever
  its MsgSeqNum, never lowering the number expected.
- Reject (3) with RefSeqNum(45), RefTagID(371), RefMsgType(372),
  SessionRejectReason(373) and Text(58) for a message missing a required header field
  or with one that does not parse; a wrong CompID or a SendingTime(52) off the clock by
  more than ``max_latency`` is rejected and the session logged out.

Outbound messages are handed out unsequenced (``Send``); the runner seals each with
``seal`` (the next MsgSeqNum, the header, SendingTime) as it writes it, so the numbers
on the wire are in the order of the writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

import simplefix

from poise.execute.fix.codec import (
    ADMIN_TYPES,
    BEGIN_STRING,
    Frame,
    Garbled,
    MsgType,
    Tag,
    decode,
    encode,
    field,
    format_timestamp,
    parse_timestamp,
    to_text,
)
from poise.execute.fix.config import Role, SessionConfig
from poise.execute.fix.errors import FixError, tag_label

__all__ = [
    "Action",
    "Advance",
    "Deliver",
    "Disconnect",
    "Event",
    "EventKind",
    "RejectReason",
    "Resend",
    "ResetStore",
    "Send",
    "SessionMachine",
    "State",
]

# Fields of the standard header: not copied from a message handed in, nor from a
# stored one when it is sent again (the header is made anew).
HEADER_TAGS = frozenset({8, 9, 10, 34, 35, 43, 49, 50, 52, 56, 57, 97, 115, 122, 128, 142, 143})
_HEADER_BYTES = frozenset(str(tag).encode("ascii") for tag in HEADER_TAGS)
_BEGIN = BEGIN_STRING.encode("ascii")
# How much longer than a heartbeat interval silence may last before a TestRequest, and
# a TestRequest before the connection is given up.
GRACE = 1.2


class State(StrEnum):
    DISCONNECTED = "disconnected"
    AWAITING_LOGON = "awaiting logon"
    LOGGED_ON = "logged on"
    LOGOUT_SENT = "logout sent"  # waiting for the counterparty's Logout
    LOGOUT_ANSWERED = "logout answered"  # waiting for the counterparty to disconnect


class RejectReason(IntEnum):
    """SessionRejectReason(373) values poise sends."""

    REQUIRED_TAG_MISSING = 1
    VALUE_INCORRECT = 5
    INCORRECT_DATA_FORMAT = 6
    COMPID_PROBLEM = 9
    SENDING_TIME_ACCURACY = 10


class EventKind(StrEnum):
    """What happened, for the log (and ``LOGGED_ON`` for the application)."""

    LOGGED_ON = "logged on"
    LOGOUT_RECEIVED = "logout received"
    GARBLED = "garbled data ignored"
    DUPLICATE_IGNORED = "possible duplicate already received, ignored"
    REJECTED = "message rejected"
    REJECT_RECEIVED = "reject received"
    RESEND_REQUESTED = "resend requested"
    RESENT = "resend request answered"
    GAP_FILLED = "gap filled"
    SEQUENCE_RESET = "sequence reset"
    TEST_REQUEST_SENT = "test request sent"
    RESENT_HEARD = "message refused before heard again"


@dataclass(frozen=True, slots=True, eq=False)
class Send:
    """Seal ``message`` (``SessionMachine.seal``), store it, write it."""

    message: Any  # simplefix.FixMessage without a header


@dataclass(frozen=True, slots=True)
class Resend:
    """Write ``raw`` as it is: a message sent before, or a gap fill in its place (it
    keeps its old sequence number, and is not stored again)."""

    raw: bytes


@dataclass(frozen=True, slots=True, eq=False)
class Deliver:
    """Hand an application message to the application."""

    message: Any
    seq: int
    possdup: bool


@dataclass(frozen=True, slots=True)
class Advance:
    """The next inbound sequence number is now ``next_target``: keep it."""

    next_target: int


@dataclass(frozen=True, slots=True)
class ResetStore:
    """Both sequence numbers back to 1, the messages kept dropped."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection."""

    reason: str


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    text: str


Action = Send | Resend | Deliver | Advance | ResetStore | Disconnect | Event
Stored = Callable[[int, int], list[tuple[int, bytes]]]


@dataclass(frozen=True, slots=True, eq=False)
class _Early:
    """A message that came before its turn."""

    message: Any
    msg_type: str
    answered: bool  # a Logon or ResendRequest already acted on: its turn only counts it


class SessionMachine:
    """One connection's worth of a session, from its sequence numbers as stored.

    ``stored`` reads the messages sent (``SessionStore.outbound``), to answer resend
    requests. Every method that takes ``now`` returns the actions to carry out, in
    order; the machine's own numbers already reflect them.
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        next_sender: int,
        next_target: int,
        stored: Stored,
        refused: set[int] | None = None,
    ) -> None:
        self.config = config
        self.next_sender = next_sender
        self.next_target = next_target
        self._stored = stored
        self.state = State.DISCONNECTED
        self.heartbeat_interval = config.heartbeat_interval
        self._deadline: datetime | None = None
        self._last_sent: datetime | None = None
        self._last_received: datetime | None = None
        self._test_request: tuple[str, datetime] | None = None
        self._tests = 0
        self._early: dict[int, _Early] = {}
        self._resend_through: int | None = None  # asked for the gap up to here
        self._asked_reset = False
        # Application messages refused for their SendingTime: their MsgSeqNums were
        # used up (as FIX asks), but what they said was never heard. They are asked for
        # again after the next logon and heard, once, when they come back as PossDup.
        # The caller keeps the set from one connection to the next.
        self.refused: set[int] = refused if refused is not None else set()
        self._arrived: datetime | None = None

    @property
    def logged_on(self) -> bool:
        return self.state is State.LOGGED_ON

    # --- the connection -------------------------------------------------------------

    def connected(self, now: datetime) -> list[Action]:
        """A connection is open: an initiator logs on, an acceptor waits for a Logon."""
        self.state = State.AWAITING_LOGON
        self._deadline = now + _seconds(self.config.logon_timeout)
        self._last_sent = self._last_received = now
        if self.config.role is Role.ACCEPTOR:
            return []
        actions: list[Action] = []
        if self.config.reset_on_logon:
            actions.append(self._reset_numbers())
            self._asked_reset = True
        actions.append(Send(_logon(self.heartbeat_interval, reset=self.config.reset_on_logon)))
        return actions

    def disconnected(self) -> None:
        self.state = State.DISCONNECTED
        self._deadline = None

    def logout(self, text: str, now: datetime) -> list[Action]:
        """Start logging out: a Logout, then wait for the counterparty's."""
        if self.state is not State.LOGGED_ON:
            return []
        self.state = State.LOGOUT_SENT
        self._deadline = now + _seconds(self.config.logout_timeout)
        return [Send(_logout(text))]

    # --- outbound -------------------------------------------------------------------

    def seal(self, message: Any, now: datetime) -> tuple[int, bytes]:
        """``message`` with the header, the next MsgSeqNum and SendingTime, encoded."""
        msg_type = field(message, Tag.MsgType)
        if not msg_type:
            raise FixError("a message to send needs a MsgType(35)")
        seq = self.next_sender
        raw = self._build(msg_type, seq, now, _body(message))
        self.next_sender = seq + 1
        self._last_sent = now
        return seq, raw

    def unseal(self, seq: int) -> None:
        """``seq`` was sealed but never stored: it is the next one again."""
        if seq == self.next_sender - 1:
            self.next_sender = seq

    def _build(
        self,
        msg_type: str,
        seq: int,
        now: datetime,
        body: list[tuple[bytes, bytes]],
        original_time: str | None = None,
    ) -> bytes:
        """The message on the wire: the session's header, then ``body`` (pairs as
        simplefix keeps them: the tag's digits, the value's bytes)."""
        kind = msg_type.encode("latin-1")
        header = [
            (b"8", _BEGIN),
            (b"35", kind),
            (b"49", self.config.sender_comp_id.encode("latin-1")),
            (b"56", self.config.target_comp_id.encode("latin-1")),
            (b"34", str(seq).encode("ascii")),
        ]
        if original_time is not None:
            header.append((b"43", b"Y"))
        header.append((b"52", format_timestamp(now).encode("ascii")))
        if original_time is not None:
            header.append((b"122", original_time.encode("ascii")))
        out = simplefix.FixMessage()
        out.pairs = header + body
        out.header_index = len(header)
        out.begin_string, out.message_type = _BEGIN, kind
        return encode(out)

    # --- inbound --------------------------------------------------------------------

    def receive(  # noqa: PLR0911 - one return per case of the protocol, in the order FIX checks them
        self, item: Frame | Garbled, now: datetime, *, arrived: datetime | None = None
    ) -> list[Action]:
        """What to do about one frame (or garbled run of bytes) from the counterparty;
        ``arrived``: when its bytes were read, if before ``now`` — its SendingTime is
        judged against that, so a message that waited on this side is not refused as
        late."""
        if self.state is State.DISCONNECTED:
            return []
        if isinstance(item, Garbled):
            return [Event(EventKind.GARBLED, f"{item.reason}: {to_text(item.raw)[:300]}")]
        message = item.message
        self._arrived = arrived
        self._last_received = arrived or now
        self._test_request = None  # the counterparty is alive
        msg_type = field(message, Tag.MsgType) or ""
        begin = field(message, Tag.BeginString)
        if begin != BEGIN_STRING:
            return self._end(now, f"BeginString(8) {begin} is not {BEGIN_STRING}")
        seq = _number(field(message, Tag.MsgSeqNum))
        if seq is None or seq < 1:
            return self._end(now, "MsgSeqNum(34) missing or not a positive number")
        if self.state is State.AWAITING_LOGON:
            return self._logon(message, msg_type, seq, now)
        problem = self._header_problem(message, msg_type, seq, now)
        if problem is not None:
            return problem
        if msg_type == MsgType.SequenceReset and field(message, Tag.GapFillFlag) != "Y":
            return self._sequence_reset(message, seq) + self._drain(now)
        if msg_type == MsgType.Logout and seq > self.next_target:
            return self._logout_received(message, now, [])
        if seq > self.next_target:
            return self._too_high(message, msg_type, seq, now)
        if seq < self.next_target:
            if field(message, Tag.PossDupFlag) == "Y":
                if seq in self.refused and msg_type not in ADMIN_TYPES:
                    return self._heard_again(message, msg_type, seq)
                return [Event(EventKind.DUPLICATE_IGNORED, f"MsgSeqNum {seq} ({msg_type})")]
            return self._end(
                now, f"MsgSeqNum too low, expecting {self.next_target} but received {seq}"
            )
        return self._process(message, msg_type, seq, now) + self._drain(now)

    def _logon(  # noqa: PLR0911 - one return per way a Logon can fail
        self, message: Any, msg_type: str, seq: int, now: datetime
    ) -> list[Action]:
        """The first message of a connection: a Logon from the counterparty, or goodbye."""
        if msg_type != MsgType.Logon:
            if msg_type == MsgType.Logout:
                return self._drop(f"logon refused: {field(message, Tag.Text) or 'no reason given'}")
            return self._drop(f"first message is MsgType {msg_type}, not a Logon")
        sender = field(message, Tag.SenderCompID)
        target = field(message, Tag.TargetCompID)
        if sender != self.config.target_comp_id or target != self.config.sender_comp_id:
            return self._drop(
                f"Logon from {sender} to {target}; this session is "
                f"{self.config.target_comp_id} to {self.config.sender_comp_id}"
            )
        late = self._time_problem(message, now)
        if late is not None:
            return self._refuse(now, late)
        heartbeat = _number(field(message, Tag.HeartBtInt))
        if heartbeat is None or heartbeat < 0:
            return self._refuse(now, "HeartBtInt(108) missing or not a number")
        reset = field(message, Tag.ResetSeqNumFlag) == "Y"
        actions: list[Action] = []
        if self.config.role is Role.ACCEPTOR:
            reset = reset or self.config.reset_on_logon
            if reset:
                actions.append(self._reset_numbers())
            self.heartbeat_interval = heartbeat
        elif reset and not self._asked_reset:  # the acceptor started afresh: so do we, inbound
            self.next_target = 1
            self.refused.clear()
            actions.append(Advance(1))
        if seq < self.next_target:
            return actions + self._refuse(
                now, f"MsgSeqNum too low, expecting {self.next_target} but received {seq}"
            )
        if self.config.role is Role.ACCEPTOR:
            actions.append(Send(_logon(heartbeat, reset=reset)))
        self.state = State.LOGGED_ON
        self._deadline = None
        if seq == self.next_target:
            actions.append(self._advance(seq + 1))
        else:
            self._early[seq] = _Early(message, msg_type, answered=True)
            actions += self._ask_resend(seq)
        actions.append(Event(EventKind.LOGGED_ON, f"HeartBtInt {self.heartbeat_interval}"))
        return actions + self._ask_refused()

    def _header_problem(
        self, message: Any, msg_type: str, seq: int, now: datetime
    ) -> list[Action] | None:
        """A wrong CompID or SendingTime: rejected, and the session ends."""
        for tag, expected in (
            (Tag.SenderCompID, self.config.target_comp_id),
            (Tag.TargetCompID, self.config.sender_comp_id),
        ):
            value = field(message, tag)
            if value is not None and value != expected:
                text = f"CompID problem: {tag_label(tag)} is {value}, expected {expected}"
                return self._reject_and_end(
                    seq, tag, RejectReason.COMPID_PROBLEM, msg_type, text=text, now=now
                )
        late = self._time_problem(message, now)
        if late is not None:
            tag = Tag.OrigSendingTime if "OrigSendingTime" in late else Tag.SendingTime
            if msg_type not in ADMIN_TYPES and seq >= self.next_target:
                self.refused.add(seq)
            return self._reject_and_end(
                seq, tag, RejectReason.SENDING_TIME_ACCURACY, msg_type, text=late, now=now
            )
        return None

    def _time_problem(self, message: Any, now: datetime) -> str | None:
        """Why SendingTime (or OrigSendingTime) cannot be right; None if it can be (a
        missing or unreadable one is rejected in its turn)."""
        sent = _time(field(message, Tag.SendingTime))
        if sent is None:
            return None
        now = self._arrived or now
        if self.config.max_latency and abs(now - sent) > _seconds(self.config.max_latency):
            return (
                f"SendingTime accuracy problem: SendingTime(52) {format_timestamp(sent)} is "
                f"more than {self.config.max_latency:g} s from {format_timestamp(now)}"
            )
        original = _time(field(message, Tag.OrigSendingTime))
        possdup = field(message, Tag.PossDupFlag) == "Y"
        if possdup and original is not None and original > sent:
            return "SendingTime accuracy problem: OrigSendingTime(122) after SendingTime(52)"
        return None

    def _heard_again(self, message: Any, msg_type: str, seq: int) -> list[Action]:
        """An application message refused for its SendingTime, sent again: heard now,
        once (the sequence number it used up stays used)."""
        problem = self._field_problem(message, msg_type, seq)
        if problem is not None:
            return problem
        self.refused.discard(seq)
        return [
            Deliver(message, seq, possdup=True),
            Event(EventKind.RESENT_HEARD, f"MsgSeqNum {seq} ({msg_type}), refused before"),
        ]

    def _ask_refused(self) -> list[Action]:
        """After a logon: ask again for the application messages refused before."""
        if not self.refused:
            return []
        begin, end = min(self.refused), max(self.refused)
        request = _message(MsgType.ResendRequest, (Tag.BeginSeqNo, begin), (Tag.EndSeqNo, end))
        text = f"MsgSeqNum {begin} to {end}: refused for their SendingTime, asked for again"
        return [Send(request), Event(EventKind.RESEND_REQUESTED, text)]

    def _too_high(self, message: Any, msg_type: str, seq: int, now: datetime) -> list[Action]:
        """A message past a gap: kept for its turn, and the gap asked for (once)."""
        actions: list[Action] = []
        answered = False
        if msg_type == MsgType.ResendRequest:
            wanted = _range(message)
            if wanted is not None:
                actions += self._answer_resend(*wanted, now)
                answered = True
        self._early[seq] = _Early(message, msg_type, answered)
        return actions + self._ask_resend(seq)

    def _ask_resend(self, seq: int) -> list[Action]:
        if self._resend_through is not None:
            self._resend_through = max(self._resend_through, seq)
            return []
        self._resend_through = seq
        request = _message(
            MsgType.ResendRequest, (Tag.BeginSeqNo, self.next_target), (Tag.EndSeqNo, 0)
        )
        text = (
            f"MsgSeqNum {seq}, expecting {self.next_target}: asked for {self.next_target} onwards"
        )
        return [Send(request), Event(EventKind.RESEND_REQUESTED, text)]

    def _drain(self, now: datetime) -> list[Action]:
        """Process the messages that came early whose turn has come."""
        actions: list[Action] = []
        while self.state is not State.DISCONNECTED and self.next_target in self._early:
            seq = self.next_target
            early = self._early.pop(seq)
            if early.answered:
                actions.append(self._advance(seq + 1))
            else:
                actions += self._process(early.message, early.msg_type, seq, now)
        for seq in [seq for seq in self._early if seq < self.next_target]:
            del self._early[seq]
        if self._resend_through is not None and self.next_target > self._resend_through:
            self._resend_through = None
            actions.append(Event(EventKind.GAP_FILLED, f"next expected {self.next_target}"))
        return actions

    def _process(self, message: Any, msg_type: str, seq: int, now: datetime) -> list[Action]:
        """A message in its turn (MsgSeqNum as expected)."""
        problem = self._field_problem(message, msg_type, seq)
        if problem is not None:
            return problem
        if msg_type not in ADMIN_TYPES:
            possdup = field(message, Tag.PossDupFlag) == "Y"
            return [Deliver(message, seq, possdup), self._advance(seq + 1)]
        return _ADMIN_HANDLERS[msg_type](self, message, seq, now)

    def _field_problem(self, message: Any, msg_type: str, seq: int) -> list[Action] | None:
        """A Reject for a required header field missing or unreadable; None if none is."""
        required = [Tag.SenderCompID, Tag.TargetCompID, Tag.SendingTime]
        possdup = field(message, Tag.PossDupFlag) == "Y"
        if possdup and msg_type != MsgType.SequenceReset:
            required.append(Tag.OrigSendingTime)
        for tag in required:
            value = field(message, tag)
            if value is None:
                return self._reject(seq, tag, RejectReason.REQUIRED_TAG_MISSING, msg_type)
            if tag in (Tag.SendingTime, Tag.OrigSendingTime) and _time(value) is None:
                return self._reject(seq, tag, RejectReason.INCORRECT_DATA_FORMAT, msg_type)
        return None

    def _on_heartbeat(self, message: Any, seq: int, now: datetime) -> list[Action]:
        return [self._advance(seq + 1)]

    def _on_test_request(self, message: Any, seq: int, now: datetime) -> list[Action]:
        test_id = field(message, Tag.TestReqID)
        if test_id is None:
            return self._reject(seq, Tag.TestReqID, RejectReason.REQUIRED_TAG_MISSING, "1")
        heartbeat = _message(MsgType.Heartbeat, (Tag.TestReqID, test_id))
        return [Send(heartbeat), self._advance(seq + 1)]

    def _on_resend_request(self, message: Any, seq: int, now: datetime) -> list[Action]:
        wanted = _range(message)
        if wanted is None:
            return self._reject(seq, Tag.BeginSeqNo, RejectReason.INCORRECT_DATA_FORMAT, "2")
        return [*self._answer_resend(*wanted, now), self._advance(seq + 1)]

    def _on_reject(self, message: Any, seq: int, now: datetime) -> list[Action]:
        text = f"to MsgSeqNum {field(message, Tag.RefSeqNum)}: {field(message, Tag.Text)}"
        return [Event(EventKind.REJECT_RECEIVED, text), self._advance(seq + 1)]

    def _on_logout(self, message: Any, seq: int, now: datetime) -> list[Action]:
        return self._logout_received(message, now, [self._advance(seq + 1)])

    def _on_logon(self, message: Any, seq: int, now: datetime) -> list[Action]:
        return self._end(now, "Logon received while logged on")

    def _gap_fill(self, message: Any, seq: int, now: datetime) -> list[Action]:
        """SequenceReset-GapFill in its turn: the next one expected is NewSeqNo."""
        new = _number(field(message, Tag.NewSeqNo))
        if new is None:
            return self._reject(seq, Tag.NewSeqNo, RejectReason.REQUIRED_TAG_MISSING, "4")
        if new <= seq:
            text = f"NewSeqNo(36) {new} is not above MsgSeqNum {seq}"
            return self._reject(seq, Tag.NewSeqNo, RejectReason.VALUE_INCORRECT, "4", text)
        return [Event(EventKind.SEQUENCE_RESET, f"gap fill {seq} to {new}"), self._advance(new)]

    def _sequence_reset(self, message: Any, seq: int) -> list[Action]:
        """SequenceReset-Reset: whatever its own MsgSeqNum, the next one expected is
        NewSeqNo — unless that would go back."""
        new = _number(field(message, Tag.NewSeqNo))
        if new is None:
            return self._reject(
                seq, Tag.NewSeqNo, RejectReason.REQUIRED_TAG_MISSING, "4", advance=False
            )
        if new < self.next_target:
            text = f"attempt to lower sequence number, invalid value NewSeqNo(36)={new}"
            return self._reject(
                seq, Tag.NewSeqNo, RejectReason.VALUE_INCORRECT, "4", text, advance=False
            )
        text = f"reset from {self.next_target} to {new}"
        return [Event(EventKind.SEQUENCE_RESET, text), self._advance(new)]

    def _logout_received(self, message: Any, now: datetime, advance: list[Action]) -> list[Action]:
        text = field(message, Tag.Text) or ""
        event = Event(EventKind.LOGOUT_RECEIVED, text)
        if self.state is State.LOGOUT_SENT:
            self.state = State.DISCONNECTED
            return [*advance, event, Disconnect(f"logged out{': ' + text if text else ''}")]
        self.state = State.LOGOUT_ANSWERED
        self._deadline = now + _seconds(self.config.logout_timeout)
        return [*advance, event, Send(_logout(""))]

    def _answer_resend(self, begin: int, end: int, now: datetime) -> list[Action]:
        """The messages ``begin``..``end`` again: application messages as they were, with
        PossDupFlag and OrigSendingTime; session messages (and any not kept) gap-filled."""
        last = self.next_sender - 1
        stop = last if end == 0 or end > last else end
        if begin > stop:
            return [Event(EventKind.RESENT, f"{begin}..{end}: nothing sent in that range")]
        actions: list[Action] = []
        cursor = begin
        for seq, raw in self._stored(begin, stop):
            again = self._again(seq, raw, now) if begin <= seq <= stop else None
            if again is None:
                continue
            if seq > cursor:
                actions.append(self._gap(cursor, seq, now))
            actions.append(Resend(again))
            cursor = seq + 1
        if cursor <= stop:
            actions.append(self._gap(cursor, stop + 1, now))
        self._last_sent = now
        text = f"{begin}..{end}: {len(actions)} messages, through {stop}"
        return [*actions, Event(EventKind.RESENT, text)]

    def _again(self, seq: int, raw: bytes, now: datetime) -> bytes | None:
        try:
            kept = decode(raw)
        except ValueError:
            return None
        msg_type = field(kept, Tag.MsgType)
        if msg_type is None or msg_type in ADMIN_TYPES:
            return None
        original = field(kept, Tag.SendingTime) or format_timestamp(now)
        return self._build(msg_type, seq, now, _body(kept), original_time=original)

    def _gap(self, seq: int, new: int, now: datetime) -> Resend:
        body = [(b"123", b"Y"), (b"36", str(new).encode("ascii"))]  # GapFillFlag, NewSeqNo
        raw = self._build(
            MsgType.SequenceReset, seq, now, body, original_time=format_timestamp(now)
        )
        return Resend(raw)

    # --- timers ---------------------------------------------------------------------

    def tick(self, now: datetime) -> list[Action]:
        """What the time alone calls for: heartbeats, test requests, timeouts."""
        if self.state is State.DISCONNECTED:
            return []
        if self.state is not State.LOGGED_ON:
            if self._deadline is not None and now >= self._deadline:
                return self._drop(f"timed out: {self.state.value}")
            return []
        if self.heartbeat_interval <= 0:
            return []
        interval = _seconds(self.heartbeat_interval)
        actions: list[Action] = []
        if self._test_request is not None:
            test_id, asked = self._test_request
            if now - asked >= interval * GRACE:
                return self._drop(f"TestRequest {test_id} not answered")
        elif self._last_received is not None and now - self._last_received >= interval * GRACE:
            self._tests += 1
            test_id = f"TEST{self._tests}-{format_timestamp(now)}"
            self._test_request = (test_id, now)
            actions += [
                Send(_message(MsgType.TestRequest, (Tag.TestReqID, test_id))),
                Event(EventKind.TEST_REQUEST_SENT, test_id),
            ]
        if not actions and self._last_sent is not None and now - self._last_sent >= interval:
            actions.append(Send(_message(MsgType.Heartbeat)))
        return actions

    def next_deadline(self) -> datetime | None:
        """When ``tick`` next has something to do (at the latest)."""
        if self.state is State.DISCONNECTED:
            return None
        if self.state is not State.LOGGED_ON:
            return self._deadline
        if self.heartbeat_interval <= 0 or self._last_sent is None or self._last_received is None:
            return None
        interval = _seconds(self.heartbeat_interval)
        silence = (
            self._test_request[1] if self._test_request is not None else self._last_received
        ) + interval * GRACE
        return min(self._last_sent + interval, silence)

    # --- endings and rejects --------------------------------------------------------

    def _advance(self, next_target: int) -> Advance:
        self.next_target = next_target
        return Advance(next_target)

    def _reset_numbers(self) -> ResetStore:
        self.next_sender = self.next_target = 1
        self._early.clear()
        self.refused.clear()
        self._resend_through = None
        return ResetStore()

    def _reject(
        self,
        seq: int,
        tag: int,
        reason: RejectReason,
        msg_type: str,
        text: str | None = None,
        *,
        advance: bool = True,
    ) -> list[Action]:
        """A session-level Reject of message ``seq`` (counted as received, unless not
        ``advance``)."""
        if text is None:
            label = (
                "Required tag missing"
                if reason is RejectReason.REQUIRED_TAG_MISSING
                else (
                    "Incorrect data format for value"
                    if reason is RejectReason.INCORRECT_DATA_FORMAT
                    else "Value is incorrect"
                )
            )
            text = f"{label}: {tag_label(tag)}"
        reject = _message(
            MsgType.Reject,
            (Tag.RefSeqNum, seq),
            (Tag.RefTagID, int(tag)),
            (Tag.RefMsgType, msg_type),
            (Tag.SessionRejectReason, int(reason)),
            (Tag.Text, text),
        )
        actions: list[Action] = [
            Send(reject),
            Event(EventKind.REJECTED, f"MsgSeqNum {seq}: {text}"),
        ]
        if advance and seq == self.next_target:
            actions.append(self._advance(seq + 1))
        return actions

    def _reject_and_end(
        self, seq: int, tag: int, reason: RejectReason, msg_type: str, *, text: str, now: datetime
    ) -> list[Action]:
        return self._reject(seq, tag, reason, msg_type, text) + self._end(now, text)

    def _end(self, now: datetime, text: str) -> list[Action]:
        """Something the session cannot go on from: a Logout saying what (if logged on),
        and the connection closed."""
        if self.state is State.AWAITING_LOGON:
            return self._drop(text)
        return self._refuse(now, text)

    def _refuse(self, now: datetime, text: str) -> list[Action]:
        self.state = State.DISCONNECTED
        return [Send(_logout(text)), Disconnect(text)]

    def _drop(self, text: str) -> list[Action]:
        self.state = State.DISCONNECTED
        return [Disconnect(text)]


Handler = Callable[[SessionMachine, Any, int, datetime], list[Action]]
# The session's own messages in their turn, by MsgType.
_ADMIN_HANDLERS: dict[str, Handler] = {
    MsgType.Heartbeat: SessionMachine._on_heartbeat,
    MsgType.TestRequest: SessionMachine._on_test_request,
    MsgType.ResendRequest: SessionMachine._on_resend_request,
    MsgType.Reject: SessionMachine._on_reject,
    MsgType.SequenceReset: SessionMachine._gap_fill,
    MsgType.Logout: SessionMachine._on_logout,
    MsgType.Logon: SessionMachine._on_logon,
}


def _message(msg_type: str, *pairs: tuple[int, object]) -> Any:
    message = simplefix.FixMessage()
    message.append_pair(Tag.MsgType, msg_type, header=True)
    for tag, value in pairs:
        message.append_pair(int(tag), value)
    return message


def _logon(heartbeat: int, *, reset: bool) -> Any:
    pairs: list[tuple[int, object]] = [(Tag.EncryptMethod, 0), (Tag.HeartBtInt, heartbeat)]
    if reset:
        pairs.append((Tag.ResetSeqNumFlag, "Y"))
    return _message(MsgType.Logon, *pairs)


def _logout(text: str) -> Any:
    return _message(MsgType.Logout, *([(Tag.Text, text)] if text else []))


def _body(message: Any) -> list[tuple[bytes, bytes]]:
    return [(tag, value) for tag, value in message.pairs if tag not in _HEADER_BYTES]


def _number(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    return int(text)


def _time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def _range(message: Any) -> tuple[int, int] | None:
    begin = _number(field(message, Tag.BeginSeqNo))
    end = _number(field(message, Tag.EndSeqNo))
    if begin is None or end is None or begin < 1:
        return None
    return begin, end


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
