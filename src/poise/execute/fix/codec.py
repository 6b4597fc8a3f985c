"""FIX on the wire: tags, timestamps, encoding, and the framer that cuts a byte stream
into messages.

``simplefix`` encodes and parses the fields; it does not check BodyLength(9) or
CheckSum(10), so the framer does. A frame is cut by its BodyLength and accepted only
when the CheckSum trailer sits exactly where that length puts it and its value is the
sum of the bytes before it modulo 256. Anything else is *garbled*: reported as a value
(never raised), skipped, and the stream resynchronises at the next ``8=FIX``. The
session ignores garbled data, as FIX asks (a garbled message is not rejected and does
not use up a sequence number).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import simplefix
from simplefix.data import RAW_LEN_TAGS
from simplefix.errors import ParsingError

__all__ = [
    "ADMIN_TYPES",
    "BEGIN_STRING",
    "SOH",
    "Frame",
    "Framer",
    "Garbled",
    "MsgType",
    "Tag",
    "checksum",
    "decode",
    "encode",
    "field",
    "fields_index",
    "format_timestamp",
    "parse_timestamp",
    "tag_bytes",
    "to_text",
]

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"

_START = b"8=FIX"
_MAX_BEGIN = 16  # "8=FIX.4.4" and then some: a BeginString longer than this is garbled
_MAX_LENGTH_DIGITS = 7
MAX_BODY = 1 << 20  # a BodyLength(9) above a mebibyte is garbled, not waited for
_TRAILER = 7  # "10=ddd\x01"
# A CheckSum trailer with the start of the next message right behind it, where the
# BodyLength of the message in hand says its body is still going on: that BodyLength
# is wrong, and there is no need to wait for bytes that would only prove it.
# A raw data length field (simplefix's list of them): its data may hold SOH.
_RAW_LENGTH = re.compile(
    rb"\x01(?:" + b"|".join(str(tag).encode() for tag in RAW_LEN_TAGS) + rb")="
)
_EARLY_END = re.compile(rb"\x0110=\d{3}\x01(?=8=FIX)")


class Tag(IntEnum):
    """The tags poise reads or writes, named as the FIX 4.4 specification names them."""

    Account = 1
    AvgPx = 6
    BeginSeqNo = 7
    BeginString = 8
    BodyLength = 9
    CheckSum = 10
    ClOrdID = 11
    CumQty = 14
    EndSeqNo = 16
    ExecID = 17
    HandlInst = 21
    LastPx = 31
    LastQty = 32
    MsgSeqNum = 34
    MsgType = 35
    NewSeqNo = 36
    OrderID = 37
    OrderQty = 38
    OrdStatus = 39
    OrdType = 40
    OrigClOrdID = 41
    PossDupFlag = 43
    Price = 44
    RefSeqNum = 45
    SenderCompID = 49
    SendingTime = 52
    Side = 54
    Symbol = 55
    TargetCompID = 56
    Text = 58
    TimeInForce = 59
    TransactTime = 60
    PossResend = 97
    EncryptMethod = 98
    CxlRejReason = 102
    OrdRejReason = 103
    HeartBtInt = 108
    TestReqID = 112
    OrigSendingTime = 122
    GapFillFlag = 123
    ResetSeqNumFlag = 141
    ExecType = 150
    LeavesQty = 151
    RefTagID = 371
    RefMsgType = 372
    SessionRejectReason = 373
    BusinessRejectRefID = 379
    BusinessRejectReason = 380
    CxlRejResponseTo = 434


class MsgType(StrEnum):
    """The message types poise sends or answers."""

    Heartbeat = "0"
    TestRequest = "1"
    ResendRequest = "2"
    Reject = "3"
    SequenceReset = "4"
    Logout = "5"
    ExecutionReport = "8"
    OrderCancelReject = "9"
    Logon = "A"
    NewOrderSingle = "D"
    OrderCancelRequest = "F"
    OrderCancelReplaceRequest = "G"
    OrderStatusRequest = "H"
    BusinessMessageReject = "j"


ADMIN_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
"""The session's own messages; every other type is the application's."""


def field(message: Any, tag: int) -> str | None:
    """The value of ``tag`` in ``message`` as text (its first occurrence), or None."""
    key = _TAG_BYTES.get(tag)
    if key is None:
        key = _TAG_BYTES.setdefault(int(tag), str(int(tag)).encode("ascii"))
    pairs = message.pairs
    index = getattr(message, _INDEX, None)
    if index is not None and index[0] == len(pairs):
        found = index[1].get(key)
        return None if found is None else found.decode("latin-1")
    for name, value in pairs:
        if name == key:
            text: str = value.decode("latin-1")
            return text
    return None


def fields_index(message: Any) -> dict[bytes, bytes]:
    """``message``'s fields by tag digits (each tag's first value), for many reads of
    one message: the index ``decode`` made, or one made now."""
    index = getattr(message, _INDEX, None)
    if index is not None and index[0] == len(message.pairs):
        found: dict[bytes, bytes] = index[1]
        return found
    return dict(reversed(message.pairs))


def tag_bytes(tag: int) -> bytes:
    """A tag as a message's pairs and :func:`fields_index` hold it: its digits."""
    return str(int(tag)).encode("ascii")


# A decoded message's fields by tag (each tag's first value), with how many pairs it
# had: made once by ``decode`` for the many reads that follow; a message whose pairs
# have been added to or taken from since is read field by field again.
_INDEX = "_poise_index"


# A tag as simplefix keeps it in a message's pairs (its digits), by number: looked up,
# not made again, for each field read.
_TAG_BYTES: dict[int, bytes] = {}


def checksum(data: bytes) -> int:
    """FIX's CheckSum: the sum of the bytes, modulo 256."""
    return sum(data) % 256


def encode(message: Any) -> bytes:
    """``message`` on the wire: BeginString, BodyLength and MsgType first, CheckSum last,
    both computed — the bytes simplefix's ``encode`` writes (a property test holds them
    to it), made without its walk over each byte in Python for the CheckSum and its
    copy of the message for each field added."""
    if message.message_type is None:
        raise ValueError("No message type set")
    if not message.begin_string:
        raise ValueError("No begin string set")
    body = b"".join(
        [
            b"35=",
            message.message_type,
            SOH,
            *(
                tag + b"=" + value + SOH
                for tag, value in message.pairs
                if tag not in _PLACED and not (tag[:1] == b"0" and int(tag) in _PLACED_NUMBERS)
            ),
        ]
    )
    head = b"8=" + message.begin_string + SOH + b"9=" + str(len(body)).encode("ascii") + SOH
    framed: bytes = head + body
    return framed + b"10=%03d\x01" % (sum(framed) % 256)


# The fields ``encode`` places itself (BeginString, BodyLength, MsgType, CheckSum).
_PLACED = frozenset({b"8", b"9", b"35", b"10"})
_PLACED_NUMBERS = frozenset({8, 9, 35, 10})


def decode(raw: bytes) -> Any:
    """One whole frame as a ``simplefix.FixMessage`` (checked by the framer, or read
    back from a store that only keeps what was encoded here).

    A frame with no raw data field (RawData(96), XmlData(213), EncodedText(355), … —
    values that may hold SOH) is cut at its SOHs into the message's pairs directly, as
    simplefix's parser would cut it, and refused as it would refuse it (a tag that is
    not a number, an empty value); one with such a field goes through the parser,
    which reads each data field by its length."""
    if _RAW_LENGTH.search(raw) is None and raw.endswith(SOH):
        pairs: list[tuple[bytes, bytes]] = []
        for part in raw[:-1].split(SOH):
            tag, equals, value = part.partition(b"=")
            if not value or not tag.isdigit():
                if not equals or not tag.isdigit():
                    raise ParsingError(f"field {part[:20]!r} is not tag=value")
                raise ParsingError(f"tag {tag.decode('ascii')} has an empty value")
            pairs.append((tag if tag[0] != 48 else str(int(tag)).encode("ascii"), value))
        if not pairs or pairs[0][0] != b"8":
            raise ParsingError("BeginString(8) is not the first field")
        message = simplefix.FixMessage()
        message.pairs = pairs
        index = dict(reversed(pairs))
        message.begin_string = pairs[0][1]
        message.message_type = index.get(b"35")
        setattr(message, _INDEX, (len(pairs), index))
        return message
    parser = simplefix.FixParser()
    parser.append_buffer(raw)
    message = parser.get_message()
    if message is None:
        raise ValueError("not a whole FIX message")
    return message


def to_text(raw: bytes, separator: str = "|") -> str:
    """A frame for people: SOH shown as ``separator``."""
    return raw.decode("latin-1").replace("\x01", separator)


def format_timestamp(moment: datetime) -> str:
    """A UTCTimestamp with milliseconds: ``20261207-14:30:05.123``."""
    u = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return (
        f"{u.year:04d}{u.month:02d}{u.day:02d}-{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}"
    )


_TIMESTAMP = re.compile(r"(\d{8})-(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}|\d{6}|\d{9}))?")


@functools.lru_cache(maxsize=4096)  # a burst of messages shares a few milliseconds
def parse_timestamp(text: str) -> datetime:
    """A UTCTimestamp (seconds, milli-, micro- or nanoseconds) as an aware datetime."""
    found = _TIMESTAMP.fullmatch(text)
    if found is None:
        raise ValueError(f"{text!r} is not a UTCTimestamp (YYYYMMDD-HH:MM:SS[.sss])")
    day, hour, minute, second, fraction = found.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    return datetime(
        int(day[:4]),
        int(day[4:6]),
        int(day[6:]),
        int(hour),
        int(minute),
        int(second),
        micro,
        tzinfo=UTC,
    )  # raises ValueError for a day or time that does not exist, as strptime did


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """A whole message whose BodyLength and CheckSum hold, and its fields."""

    raw: bytes
    message: Any  # simplefix.FixMessage

    @property
    def msg_type(self) -> str:
        return field(self.message, Tag.MsgType) or ""


@dataclass(frozen=True, slots=True)
class Garbled:
    """Bytes that are not a message, and why: to be logged and ignored."""

    raw: bytes
    reason: str


class Framer:
    """Cuts a byte stream into frames, whatever the reads' boundaries.

    ``feed`` takes the bytes as they arrive and returns what they completed, in order:
    a ``Frame`` for each good message, a ``Garbled`` for each run of bytes that is not
    one. Bytes that may still become a message are kept for the next ``feed``.
    """

    def __init__(self) -> None:
        self._buffer = b""

    @property
    def pending(self) -> int:
        """How many bytes wait for the rest of their message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame | Garbled]:
        self._buffer += data
        found: list[Frame | Garbled] = []
        while (item := self._next()) is not None:
            found.append(item)
        return found

    def _next(self) -> Frame | Garbled | None:  # noqa: PLR0911 - one return per way to fail
        """The next frame or garbled run at the head of the buffer; None: wait."""
        buffer = self._buffer
        start = buffer.find(_START)
        if start < 0:
            keep = _prefix_tail(buffer)
            return (
                self._drop(len(buffer) - keep, "no BeginString(8)=FIX")
                if len(buffer) > keep
                else None
            )
        if start > 0:
            return self._drop(start, "bytes between messages")
        found = self._length()
        if not isinstance(found, tuple):
            return found
        body, length = found
        trailer = body + length
        end = trailer + _TRAILER
        if len(buffer) < end:
            early = _EARLY_END.search(buffer, body)
            if early is not None and early.start() + 1 < trailer:
                actual = early.start() + 1 - body
                return self._skip(f"BodyLength(9) says {length}, the message ends after {actual}")
            return None
        if (
            buffer[trailer - 1 : trailer] != SOH
            or buffer[trailer : trailer + 3] != b"10="
            or not buffer[trailer + 3 : trailer + 6].isdigit()
            or buffer[end - 1 : end] != SOH
        ):
            return self._skip(f"no CheckSum(10) where BodyLength(9) {length} puts it")
        declared = int(buffer[trailer + 3 : trailer + 6])
        actual = checksum(buffer[:trailer])
        if declared != actual:
            return self._drop(end, f"CheckSum(10) is {declared:03d}, the bytes sum to {actual:03d}")
        raw = buffer[:end]
        self._buffer = buffer[end:]
        return _frame(raw)

    def _length(self) -> tuple[int, int] | Garbled | None:  # noqa: PLR0911 - as _next
        """Where the body of the message at the head of the buffer starts, and its
        BodyLength(9); a ``Garbled`` if those first two fields are not right; None: wait."""
        buffer = self._buffer
        begin_end = buffer.find(SOH, 0, _MAX_BEGIN + 1)
        if begin_end < 0:
            return (
                self._skip("BeginString(8) not ended by SOH") if len(buffer) > _MAX_BEGIN else None
            )
        at = begin_end + 1
        if len(buffer) < at + 2:
            return None
        if buffer[at : at + 2] != b"9=":
            return self._skip("BodyLength(9) is not the second field")
        length_end = buffer.find(SOH, at + 2, at + 3 + _MAX_LENGTH_DIGITS)
        if length_end < 0:
            if len(buffer) > at + 2 + _MAX_LENGTH_DIGITS:
                return self._skip("BodyLength(9) is not a number ended by SOH")
            return None
        digits = buffer[at + 2 : length_end]
        if not digits.isdigit():
            return self._skip(f"BodyLength(9) {digits.decode('latin-1')!r} is not a number")
        if int(digits) > MAX_BODY:
            return self._skip(f"BodyLength(9) {int(digits)} is too large")
        return length_end + 1, int(digits)

    def _drop(self, count: int, reason: str) -> Garbled:
        garbled, self._buffer = self._buffer[:count], self._buffer[count:]
        return Garbled(garbled, reason)

    def _skip(self, reason: str) -> Garbled:
        """Give up the message at the head of the buffer: resynchronise at the next
        ``8=FIX`` (or, if none has come yet, keep only what may begin one)."""
        following = self._buffer.find(_START, 1)
        if following < 0:
            following = len(self._buffer) - _prefix_tail(self._buffer)
        return self._drop(max(following, 1), reason)


def _prefix_tail(buffer: bytes) -> int:
    """How many bytes at the end of ``buffer`` could be the start of ``8=FIX``."""
    for size in range(min(len(_START) - 1, len(buffer)), 0, -1):
        if _START.startswith(buffer[-size:]):
            return size
    return 0


def _frame(raw: bytes) -> Frame | Garbled:
    try:
        message = decode(raw)
    except (ValueError, ParsingError) as exc:
        return Garbled(raw, f"fields do not parse: {exc or type(exc).__name__}")
    if message.count() < 4 or message[2][0] != Tag.MsgType:
        return Garbled(raw, "MsgType(35) is not the third field")
    return Frame(raw, message)
