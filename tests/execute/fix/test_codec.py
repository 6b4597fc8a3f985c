"""The wire: frames cut by their BodyLength, kept only when their CheckSum holds, and
every other run of bytes reported as garbled so the stream goes on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import simplefix
from hypothesis import given, settings
from hypothesis import strategies as st
from simplefix.errors import ParsingError
from tests.execute.fix.wire import SOH, frame, with_body_length, with_checksum

from poise.execute.fix.codec import (
    Frame,
    Framer,
    Garbled,
    decode,
    encode,
    field,
    format_timestamp,
    parse_timestamp,
)

HEARTBEAT = frame("35=0", "49=POISE", "56=BROKER", "34=2", "52=20261207-14:30:05.123")
ORDER = frame(
    "35=D", "49=POISE", "56=BROKER", "34=3", "52=20261207-14:30:06.000",
    "11=B-1", "1=FIRM-1", "55=AAPL", "54=1", "60=20261207-14:30:06.000", "38=100", "40=1",
)  # fmt: skip


def kinds(items: list[Frame | Garbled]) -> list[str]:
    return [
        f"frame {item.msg_type}" if isinstance(item, Frame) else f"garbled: {item.reason}"
        for item in items
    ]


def test_encode_when_a_heartbeat_is_encoded_then_length_and_checksum_are_what_the_bytes_say() -> (
    None
):
    message = simplefix.FixMessage()
    for tag, value in ((8, "FIX.4.4"), (35, "0"), (49, "POISE"), (56, "BROKER"), (34, 2)):
        message.append_pair(tag, value)
    message.append_pair(52, "20261207-14:30:05.123")

    raw = encode(message)

    body = b"35=0\x0149=POISE\x0156=BROKER\x0134=2\x0152=20261207-14:30:05.123\x01"
    head = b"8=FIX.4.4\x019=" + str(len(body)).encode() + SOH
    assert raw == head + body + b"10=" + f"{sum(head + body) % 256:03d}".encode() + SOH
    assert raw == HEARTBEAT


def test_feed_when_a_message_arrives_whole_then_it_is_one_frame_with_its_fields() -> None:
    (item,) = Framer().feed(ORDER)

    assert isinstance(item, Frame)
    assert item.raw == ORDER
    assert item.message.get(55) == b"AAPL"
    assert item.message.get(38) == b"100"


def test_feed_when_a_message_arrives_a_byte_at_a_time_then_it_is_framed_at_its_last_byte() -> None:
    framer = Framer()
    seen = [framer.feed(ORDER[i : i + 1]) for i in range(len(ORDER))]

    assert all(not items for items in seen[:-1])
    assert kinds(seen[-1]) == ["frame D"]
    assert framer.pending == 0


def test_feed_when_messages_arrive_back_to_back_then_each_is_a_frame_in_order() -> None:
    assert kinds(Framer().feed(HEARTBEAT + ORDER + HEARTBEAT)) == ["frame 0", "frame D", "frame 0"]


def test_feed_when_junk_lies_between_messages_then_it_is_garbled_and_both_messages_frame() -> None:
    items = Framer().feed(HEARTBEAT + b"line noise\r\n" + ORDER)

    assert kinds(items) == ["frame 0", "garbled: bytes between messages", "frame D"]
    assert items[1].raw == b"line noise\r\n"


def test_feed_when_the_checksum_is_wrong_then_the_message_is_garbled_and_the_next_frames() -> None:
    right = sum(HEARTBEAT[: HEARTBEAT.rindex(b"10=")]) % 256
    bad = with_checksum(HEARTBEAT, (right + 1) % 256)

    items = Framer().feed(bad + ORDER)

    assert kinds(items) == [
        f"garbled: CheckSum(10) is {(right + 1) % 256:03d}, the bytes sum to {right:03d}",
        "frame D",
    ]
    assert items[0].raw == bad


def test_feed_when_body_length_is_too_short_then_the_message_is_garbled_and_the_next_frames() -> (
    None
):
    length = len(HEARTBEAT) - HEARTBEAT.index(b"35=") - 7
    short = with_body_length(HEARTBEAT, length - 3)

    items = Framer().feed(short + ORDER)

    assert kinds(items) == [
        f"garbled: no CheckSum(10) where BodyLength(9) {length - 3} puts it",
        "frame D",
    ]


def test_feed_when_body_length_is_too_long_then_the_next_message_still_frames_at_once() -> None:
    length = len(HEARTBEAT) - HEARTBEAT.index(b"35=") - 7
    long = with_body_length(HEARTBEAT, length + 400)
    framer = Framer()

    first = framer.feed(long)
    then = framer.feed(ORDER)

    assert first == []  # it may yet be that long
    assert kinds(then) == [
        f"garbled: BodyLength(9) says {length + 400}, the message ends after {length}",
        "frame D",
    ]


def test_feed_when_body_length_is_not_a_number_then_it_is_garbled() -> None:
    length = len(HEARTBEAT) - HEARTBEAT.index(b"35=") - 7
    bad = HEARTBEAT.replace(f"9={length}".encode(), b"9=5x", 1)

    assert kinds(Framer().feed(bad + ORDER)) == [
        "garbled: BodyLength(9) '5x' is not a number",
        "frame D",
    ]


def test_feed_when_body_length_is_missing_then_it_is_garbled() -> None:
    bad = b"8=FIX.4.4" + SOH + HEARTBEAT[HEARTBEAT.index(b"35=") :]

    assert kinds(Framer().feed(bad + ORDER)) == [
        "garbled: BodyLength(9) is not the second field",
        "frame D",
    ]


def test_feed_when_fields_are_not_separated_by_soh_then_it_is_garbled() -> None:
    piped = HEARTBEAT.replace(SOH, b"|")

    assert kinds(Framer().feed(piped + ORDER)) == [
        "garbled: BeginString(8) not ended by SOH",
        "frame D",
    ]


def test_feed_when_begin_string_is_not_fix_then_the_bytes_are_garbled_up_to_the_next_message() -> (
    None
):
    foreign = HEARTBEAT.replace(b"8=FIX.4.4", b"8=FOO.1.0", 1)

    items = Framer().feed(foreign + ORDER)

    assert kinds(items) == ["garbled: bytes between messages", "frame D"]
    assert items[0].raw == foreign


def test_feed_when_msg_type_is_not_the_third_field_then_it_is_garbled() -> None:
    shuffled = frame("49=POISE", "35=0", "56=BROKER", "34=2", "52=20261207-14:30:05.123")

    assert kinds(Framer().feed(shuffled + ORDER)) == [
        "garbled: MsgType(35) is not the third field",
        "frame D",
    ]


def test_feed_when_junk_ends_in_the_start_of_a_message_then_that_start_is_kept() -> None:
    framer = Framer()

    first = framer.feed(b"noise8=FI")
    then = framer.feed(HEARTBEAT[4:])

    assert kinds(first) == ["garbled: no BeginString(8)=FIX"]
    assert first[0].raw == b"noise"
    assert kinds(then) == ["frame 0"]


def test_timestamps_when_written_then_they_read_back_to_the_millisecond() -> None:
    moment = datetime(2026, 12, 7, 14, 30, 5, 123456, tzinfo=UTC)

    assert format_timestamp(moment) == "20261207-14:30:05.123"
    assert parse_timestamp("20261207-14:30:05.123") == moment.replace(microsecond=123000)
    assert parse_timestamp("20261207-14:30:05") == moment.replace(microsecond=0)
    assert parse_timestamp("20261207-14:30:05.123456789") == moment


@pytest.mark.parametrize("text", ["2026-12-07T14:30:05", "20261207-14:30", "20261307-14:30:05", ""])
def test_timestamps_when_not_utc_timestamps_then_they_do_not_read(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_timestamp(text)


# Decoding a frame without its data fields cuts it at its SOHs; simplefix's own parser is
# the reference it must agree with, field for field, and in what it refuses.
_VALUES = st.binary(min_size=0, max_size=12).filter(lambda v: b"\x01" not in v)
_TAGS = st.sampled_from([b"1", b"11", b"38", b"055", b"58", b"x", b"", b"1=2", b"7000"])


def _by_simplefix(raw: bytes) -> list[tuple[bytes, bytes]] | str:
    parser = simplefix.FixParser()
    parser.append_buffer(raw)
    try:
        message = parser.get_message()
    except ParsingError:
        return "refused"
    return "refused" if message is None else list(message.pairs)


def _by_decode(raw: bytes) -> list[tuple[bytes, bytes]] | str:
    try:
        return list(decode(raw).pairs)
    except (ParsingError, ValueError):
        return "refused"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_TAGS, _VALUES), max_size=6))
def test_decode_when_any_fields_are_framed_then_it_reads_them_as_simplefix_parser_does(
    body: list[tuple[bytes, bytes]],
) -> None:
    raw = b"8=FIX.4.4\x019=5\x0135=D\x01" + b"".join(t + b"=" + v + SOH for t, v in body)
    raw += b"10=000\x01"

    assert _by_decode(raw) == _by_simplefix(raw)


_FIELD_TAGS = st.sampled_from(
    [b"1", b"8", b"9", b"10", b"11", b"35", b"035", b"010", b"44", b"7000"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_FIELD_TAGS, _VALUES), max_size=8),
    st.sampled_from([b"D", b"8", b"A"]),
    st.sampled_from([b"FIX.4.4", b"FIX.4.2"]),
)
def test_encode_when_any_fields_go_out_then_the_bytes_are_simplefix_encodes(
    body: list[tuple[bytes, bytes]], msg_type: bytes, begin: bytes
) -> None:
    message = simplefix.FixMessage()
    message.pairs = list(body)
    message.begin_string, message.message_type = begin, msg_type

    assert encode(message) == message.encode()


def test_decode_when_a_data_field_holds_soh_then_it_is_read_by_its_length() -> None:
    raw = frame("35=A", "49=POISE", "56=BROKER", "34=1", "52=20261207-14:30:05.123", "95=3")
    raw = raw.replace(b"95=3\x01", b"95=3\x0196=a\x01b\x01")
    message = decode(raw)  # decode leaves BodyLength and CheckSum to the framer

    assert message.get(96) == b"a\x01b"
    assert field(message, 96) == "a\x01b"
    assert field(message, 35) == "A"
    assert field(message, 999) is None
