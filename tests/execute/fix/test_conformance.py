"""The FIX 4.4 session conformance cases, category by category, against the simulated
broker started for real, from a client that can send anything (``RawClient``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.execute.fix.broker_scene import with_broker
from tests.execute.fix.rawclient import RawClient
from tests.execute.fix.wire import frame as wire_frame
from tests.execute.fix.wire import with_body_length, with_checksum

from poise.execute.broker import BrokerServer


async def logged_on(server: BrokerServer, *fields: str, heartbeat: int = 30) -> RawClient:
    client = await RawClient.connect(server.port)
    await client.logon(*fields, heartbeat=heartbeat)
    return client


async def filled(client: RawClient, cl_ord_id: str) -> list[dict[int, str]]:
    """The broker's acknowledgement and fill of the order just sent."""
    new = await client.skip_heartbeats()
    fill = await client.skip_heartbeats()
    assert (new[35], new[150], new[11]) == ("8", "0", cl_ord_id)
    assert (fill[35], fill[150], fill[39], fill[11]) == ("8", "F", "2", cl_ord_id)
    return [new, fill]


# --- logon ---------------------------------------------------------------------------


def test_logon_when_valid_then_the_broker_answers_with_its_logon(tmp_path: Path) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        answer = await client.logon(heartbeat=7)

        assert (answer[49], answer[56], answer[34], answer[108]) == ("BROKER", "POISE", "1", "7")
        assert server.session.logged_on
        await client.close()

    with_broker(tmp_path, steps)


def test_logon_when_a_probe_connected_and_left_then_the_session_is_free_at_once(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        _, probe = await asyncio.open_connection("127.0.0.1", server.port)
        probe.close()  # a port probe: connects, says nothing, leaves

        client = await RawClient.connect(server.port)
        answer = await client.logon()

        assert answer[34] == "1"
        assert server.session.store.load() == (2, 2)  # nobody's logon was lost in between
        await client.close()

    with_broker(tmp_path, steps)


def test_logon_when_a_silent_connection_is_open_then_another_logs_on(tmp_path: Path) -> None:
    async def steps(server: BrokerServer) -> None:
        _, silent = await asyncio.open_connection("127.0.0.1", server.port)

        client = await RawClient.connect(server.port)
        answer = await client.logon()

        assert answer[35] == "A"
        assert server.session.logged_on
        await client.close()
        silent.close()

    with_broker(tmp_path, steps)


def test_logon_when_a_second_client_speaks_while_logged_on_then_it_is_closed(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        first = await logged_on(server)

        second = await RawClient.connect(server.port)
        await second.send("A", "98=0", "108=30")

        assert await second.closed() == []
        assert server.session.logged_on
        await first.close()

    with_broker(tmp_path, steps)


def test_logon_when_the_comp_id_is_unknown_then_the_connection_is_closed_unanswered(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port, sender="INTRUDER")
        await client.send("A", "98=0", "108=30")

        assert await client.closed() == []
        assert server.session.store.load() == (1, 1)

    with_broker(tmp_path, steps)


def test_logon_when_heartbeat_interval_is_missing_then_a_logout_says_why(tmp_path: Path) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.send("A", "98=0")

        (logout,) = await client.closed()
        assert (logout[35], logout[58]) == ("5", "HeartBtInt(108) missing or not a number")

    with_broker(tmp_path, steps)


def test_logon_when_the_first_message_is_not_a_logon_then_the_connection_is_closed(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await RawClient.connect(server.port)
        await client.order("B-1")

        assert await client.closed() == []

    with_broker(tmp_path, steps)


# --- sequence numbers ----------------------------------------------------------------


def test_seq_when_too_high_then_the_gap_is_asked_for_and_processed_once_filled(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)
        await client.order("B-4", seq=4)

        resend = await client.expect("2")
        assert (resend[7], resend[16]) == ("2", "0")

        await client.order("B-2", seq=2, possdup=True)
        await client.send("4", "123=Y", "36=4", seq=3, possdup=True)

        reports = [await client.skip_heartbeats() for _ in range(4)]
        assert sorted((r[11], r[150]) for r in reports) == [
            ("B-2", "0"),
            ("B-2", "F"),
            ("B-4", "0"),
            ("B-4", "F"),
        ]
        assert [r[11] for r in reports if r[150] == "0"] == ["B-2", "B-4"]  # in their order
        await client.close()

    with_broker(tmp_path, steps)


def test_seq_when_too_low_then_a_logout_names_both_numbers_and_the_connection_ends(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)
        await client.send("0", seq=1)

        (logout,) = await client.closed()
        assert (logout[35], logout[58]) == ("5", "MsgSeqNum too low, expecting 2 but received 1")

    with_broker(tmp_path, steps)


def test_possdup_when_already_received_then_ignored_and_the_session_goes_on(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)
        await client.order("B-2")
        await filled(client, "B-2")

        await client.order("B-2", seq=2, possdup=True)
        await client.send("1", "112=STILL-THERE")

        await client.answer("STILL-THERE")
        await client.close()

    with_broker(tmp_path, steps)


def test_possdup_when_not_yet_received_then_processed(tmp_path: Path) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)
        earlier = datetime.now(UTC) - timedelta(minutes=10)

        await client.order("B-2", possdup=True, original=earlier)

        await filled(client, "B-2")
        await client.close()

    with_broker(tmp_path, steps)


# --- garbled messages ----------------------------------------------------------------


def test_garbled_when_junk_arrives_then_it_is_ignored_and_the_session_goes_on(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)

        await client.write(b"\x00\xffnot FIX at all\r\n8=FIX.4.4|9=12|35=0|10=000|")
        await client.send("1", "112=AFTER-JUNK")

        await client.answer("AFTER-JUNK")
        await client.close()

    with_broker(tmp_path, steps)


def test_garbled_when_the_checksum_is_wrong_then_the_message_is_ignored(tmp_path: Path) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)
        order = client.message("D", "11=B-X", "1=F", "55=AAPL", "54=1", "38=1", "40=1", seq=2)
        right = sum(order[: order.rindex(b"10=")]) % 256

        await client.write(with_checksum(order, (right + 7) % 256))
        await client.send("1", "112=SEQ-2-STILL-EXPECTED", seq=2)

        await client.answer("SEQ-2-STILL-EXPECTED")
        assert server.broker.order("B-X") is None
        await client.close()

    with_broker(tmp_path, steps)


def test_garbled_when_the_body_length_is_wrong_then_the_message_is_ignored(tmp_path: Path) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)
        order = client.message("D", "11=B-X", "1=F", "55=AAPL", "54=1", "38=1", "40=1", seq=2)
        length = len(order) - order.index(b"35=") - 7

        await client.write(with_body_length(order, length - 5))
        await client.write(with_body_length(order, length + 500))
        await client.send("1", "112=SEQ-2-STILL-EXPECTED", seq=2)

        await client.answer("SEQ-2-STILL-EXPECTED")
        assert server.broker.order("B-X") is None
        await client.close()

    with_broker(tmp_path, steps)


# --- rejects --------------------------------------------------------------------------


def test_reject_when_sending_time_is_missing_then_the_tag_is_named_and_the_session_goes_on(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)
        await client.write(wire_frame("35=D", "49=POISE", "56=BROKER", "34=2", "11=B-1"))

        reject = await client.expect("3")
        assert (reject[45], reject[371], reject[372], reject[373]) == ("2", "52", "D", "1")
        client.seq = 3
        await client.send("1", "112=AFTER-REJECT")
        await client.answer("AFTER-REJECT")
        await client.close()

    with_broker(tmp_path, steps)


def test_reject_when_the_comp_id_changes_mid_session_then_rejected_and_logged_out(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)

        await client.send("0", sender="SOMEONE-ELSE")

        reject, logout = await client.closed()
        assert (reject[35], reject[371], reject[373]) == ("3", "49", "9")
        assert logout[35] == "5"

    with_broker(tmp_path, steps)


def test_reject_when_sending_time_is_off_the_clock_then_rejected_and_logged_out(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)

        await client.send("0", sent=datetime.now(UTC) - timedelta(minutes=5))

        reject, logout = await client.closed()
        assert (reject[35], reject[371], reject[373]) == ("3", "52", "10")
        assert logout[58].startswith("SendingTime accuracy problem")

    with_broker(tmp_path, steps)


# --- heartbeats and test requests ----------------------------------------------------


def test_heartbeat_when_the_line_is_quiet_then_the_broker_sends_them_at_the_interval(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server, heartbeat=1)

        heartbeat = await client.receive()

        assert heartbeat[35] == "0"
        assert 112 not in heartbeat
        await client.close()

    with_broker(tmp_path, steps)


def test_test_request_when_sent_then_answered_with_its_id(tmp_path: Path) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)

        await client.send("1", "112=PING-1")

        await client.answer("PING-1")
        await client.close()

    with_broker(tmp_path, steps)


def test_test_request_when_the_broker_asks_and_nobody_answers_then_it_disconnects(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server, heartbeat=1)

        seen = await client.closed(wait=10)

        assert "1" in [message[35] for message in seen]  # it asked first
        assert not server.session.logged_on

    with_broker(tmp_path, steps)


# --- sequence resets -----------------------------------------------------------------


def test_sequence_reset_when_a_gap_fill_arrives_then_numbering_jumps_to_new_seq_no(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)

        await client.send("4", "123=Y", "36=6", seq=2, possdup=True)
        await client.send("1", "112=AT-6", seq=6)

        await client.answer("AT-6")
        assert server.session.store.load()[1] == 7
        await client.close()

    with_broker(tmp_path, steps)


def test_sequence_reset_when_a_reset_arrives_then_it_holds_whatever_its_own_seq(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)

        await client.send("4", "36=20", seq=500)
        await client.send("1", "112=AT-20", seq=20)

        await client.answer("AT-20")
        await client.close()

    with_broker(tmp_path, steps)


# --- resend requests -----------------------------------------------------------------


def test_resend_request_when_asked_then_reports_come_again_as_possdups_and_admins_gap_filled(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)
        await client.order("B-2")
        new, fill = await filled(client, "B-2")

        await client.send("2", "7=1", "16=0")

        gap, new_again, fill_again = [await client.skip_heartbeats() for _ in range(3)]
        assert (gap[35], gap[34], gap[123], gap[36], gap[43]) == ("4", "1", "Y", "2", "Y")
        assert (new_again[34], new_again[43], new_again[122]) == (new[34], "Y", new[52])
        assert (fill_again[34], fill_again[43], fill_again[122]) == (fill[34], "Y", fill[52])
        assert (new_again[17], fill_again[17]) == (new[17], fill[17])
        await client.close()

    with_broker(tmp_path, steps)


def test_simultaneous_resend_when_both_sides_ask_at_once_then_both_gaps_close(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        first = await logged_on(server)
        await first.order("B-2")
        await filled(first, "B-2")  # the broker's 2 and 3
        await first.close()
        await server.session.wait_disconnected()

        again = await RawClient.connect(server.port)
        again.seq = 5  # as if 3 and 4 had been sent and lost
        await again.logon()  # the broker's 4; it expects our 3
        ask = await again.expect("2")  # the broker's 5
        assert (ask[7], ask[16]) == ("3", "0")

        await again.send("2", "7=2", "16=0")  # ours, 6: early for the broker, answered at once
        answers = [await again.skip_heartbeats() for _ in range(3)]
        assert [(a[35], a[34], a.get(43)) for a in answers] == [
            ("8", "2", "Y"),
            ("8", "3", "Y"),
            ("4", "4", "Y"),
        ]
        assert answers[2][36] == "6"

        await again.send("4", "123=Y", "36=7", seq=3, possdup=True)  # 3..6 filled
        await again.send("1", "112=BOTH-CLOSED", seq=7)
        await again.answer("BOTH-CLOSED")
        assert server.session.store.load()[1] == 8
        await again.close()

    with_broker(tmp_path, steps)


# --- logout --------------------------------------------------------------------------


def test_logout_when_the_client_asks_then_the_broker_answers(tmp_path: Path) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)

        await client.send("5", "58=done for today")

        answer = await client.expect("5")
        assert answer[34] == "2"
        await client.close()
        await server.session.wait_disconnected()

    with_broker(tmp_path, steps)


def test_logout_when_the_broker_asks_then_it_says_why_and_closes_on_the_answer(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)

        logging_out = asyncio.create_task(server.session.logout("end of day"))
        logout = await client.expect("5")
        await client.send("5")
        await logging_out

        assert logout[58] == "end of day"
        assert await client.closed() == []
        assert not server.session.connected

    with_broker(tmp_path, steps)


def test_logout_when_the_client_does_not_answer_then_the_broker_closes_after_its_timeout(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        client = await logged_on(server)

        logging_out = asyncio.create_task(server.session.logout("end of day"))

        assert [m[35] for m in await client.closed()] == ["5"]
        await logging_out

    with_broker(tmp_path, steps)


def test_logon_when_the_client_asks_for_a_reset_then_both_sides_start_again_at_one(
    tmp_path: Path,
) -> None:
    async def steps(server: BrokerServer) -> None:
        first = await logged_on(server)
        await first.order("B-1")
        await filled(first, "B-1")
        await first.close()
        await server.session.wait_disconnected()

        again = await RawClient.connect(server.port)
        answer = await again.logon("141=Y")

        assert (answer[34], answer[141]) == ("1", "Y")
        assert server.session.store.load() == (2, 2)
        await again.close()

    with_broker(tmp_path, steps)
