"""The session protocol, message by message, on the machine alone with a clock the test
sets: what a FIX 4.4 session must answer to each thing its counterparty can do."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.execute.fix.machine import (
    BROKER,
    CLIENT,
    Counterparty,
    Harness,
    app_message,
    logged_on,
)

from poise.execute.fix.session import EventKind, State
from poise.execute.fix.store import MemoryStore


def kinds(harness: Harness) -> list[EventKind]:
    return [event.kind for event in harness.events]


# --- logon ---------------------------------------------------------------------------


def test_logon_when_valid_then_answered_with_a_logon_and_the_session_is_on() -> None:
    harness = Harness()
    peer = Counterparty(harness)
    harness.connect()

    harness.receive(peer.logon(1))

    (answer,) = harness.take()
    assert answer[35] == "A"
    assert (answer[49], answer[56], answer[34], answer[108]) == ("BROKER", "POISE", "1", "30")
    assert harness.machine.state is State.LOGGED_ON
    assert harness.store.load() == (2, 2)


def test_logon_when_from_an_unknown_comp_id_then_the_connection_is_dropped_without_a_word() -> None:
    harness = Harness()
    stranger = Counterparty(harness, sender="SOMEONE")
    harness.connect()

    harness.receive(stranger.logon(1))

    assert harness.take() == []
    assert harness.closed == "Logon from SOMEONE to BROKER; this session is POISE to BROKER"
    assert harness.store.load() == (1, 1)


def test_logon_when_heartbeat_interval_is_missing_then_a_logout_says_so() -> None:
    harness = Harness()
    peer = Counterparty(harness)
    harness.connect()

    harness.receive(peer.message("A", 1, "98=0"))

    (logout,) = harness.take()
    assert (logout[35], logout[58]) == ("5", "HeartBtInt(108) missing or not a number")
    assert harness.closed == "HeartBtInt(108) missing or not a number"


def test_logon_when_the_first_message_is_not_a_logon_then_the_connection_is_dropped() -> None:
    harness = Harness()
    peer = Counterparty(harness)
    harness.connect()

    harness.receive(peer.message("0", 1))

    assert harness.take() == []
    assert harness.closed == "first message is MsgType 0, not a Logon"


def test_logon_when_none_comes_in_time_then_the_connection_is_dropped() -> None:
    harness = Harness()
    harness.connect()

    harness.later(9)
    assert harness.closed is None
    harness.later(1)

    assert harness.closed == "timed out: awaiting logon"


def test_logon_when_reset_is_asked_then_both_numbers_start_again_at_one() -> None:
    store = MemoryStore()
    store.save_outbound(1, b"old")
    store.set_next_target(9)
    harness = Harness(store=store)
    peer = Counterparty(harness)
    harness.connect()

    harness.receive(peer.logon(1, "141=Y"))

    (answer,) = harness.take()
    assert (answer[34], answer[141]) == ("1", "Y")
    assert harness.store.load() == (2, 2)
    assert harness.store.outbound(1, 0)[0][0] == 1


def test_logon_when_its_seq_is_below_what_is_expected_then_a_logout_says_so() -> None:
    store = MemoryStore()
    store.set_next_target(5)
    harness = Harness(store=store)
    peer = Counterparty(harness)
    harness.connect()

    harness.receive(peer.logon(3))

    (logout,) = harness.take()
    assert logout[58] == "MsgSeqNum too low, expecting 5 but received 3"
    assert harness.closed == logout[58]


def test_logon_when_its_seq_is_above_what_is_expected_then_answered_and_the_gap_asked_for() -> None:
    store = MemoryStore()
    store.set_next_target(3)
    harness = Harness(store=store)
    peer = Counterparty(harness)
    harness.connect()

    harness.receive(peer.logon(6))

    logon, resend = harness.take()
    assert logon[35] == "A"
    assert (resend[35], resend[7], resend[16]) == ("2", "3", "0")
    assert harness.machine.logged_on


def test_initiator_when_reset_on_logon_then_it_starts_at_one_and_says_141() -> None:
    store = MemoryStore()
    store.save_outbound(1, b"yesterday")
    store.set_next_target(40)
    harness = Harness(replace(CLIENT, reset_on_logon=True), store)

    harness.connect()

    (logon,) = harness.take()
    assert (logon[35], logon[34], logon[141], logon[108]) == ("A", "1", "Y", "30")
    assert store.load() == (2, 1)


# --- sequence numbers ----------------------------------------------------------------


def test_seq_when_too_high_then_a_resend_is_asked_and_later_messages_wait_for_the_gap() -> None:
    harness, peer = logged_on()

    harness.receive(peer.order(4, "B-4"))
    harness.receive(peer.order(5, "B-5"))

    (resend,) = harness.take()
    assert (resend[35], resend[7], resend[16]) == ("2", "2", "0")
    assert harness.delivered == []

    harness.receive(peer.order(2, "B-2", possdup=True, original=harness.now))
    harness.receive(peer.order(3, "B-3", possdup=True, original=harness.now))

    assert harness.delivered == [
        (2, "B-2", True),
        (3, "B-3", True),
        (4, "B-4", False),
        (5, "B-5", False),
    ]
    assert harness.store.load()[1] == 6
    assert EventKind.GAP_FILLED in kinds(harness)
    assert harness.take() == []  # asked once


def test_seq_when_too_low_without_possdup_then_a_logout_says_so_and_the_connection_ends() -> None:
    harness, peer = logged_on()
    harness.receive(peer.order(2, "B-2"))

    harness.receive(peer.order(2, "B-2 again"))

    (logout,) = harness.take()
    assert (logout[35], logout[58]) == ("5", "MsgSeqNum too low, expecting 3 but received 2")
    assert harness.closed == logout[58]
    assert harness.delivered == [(2, "B-2", False)]


def test_possdup_when_already_received_then_ignored() -> None:
    harness, peer = logged_on()
    harness.receive(peer.order(2, "B-2"))

    harness.receive(peer.order(2, "B-2", possdup=True, original=harness.now))

    assert harness.delivered == [(2, "B-2", False)]
    assert harness.take() == []
    assert kinds(harness)[-1] is EventKind.DUPLICATE_IGNORED
    assert harness.closed is None


def test_possdup_when_not_yet_received_then_processed_as_a_possible_duplicate() -> None:
    harness, peer = logged_on()

    harness.receive(peer.order(2, "B-2", possdup=True, original=harness.now - timedelta(minutes=5)))

    assert harness.delivered == [(2, "B-2", True)]
    assert harness.store.load()[1] == 3


def test_possdup_when_orig_sending_time_is_missing_then_rejected_and_counted() -> None:
    harness, peer = logged_on()

    harness.receive(peer.order(2, "B-2", possdup=True))

    (reject,) = harness.take()
    assert (reject[35], reject[45], reject[371], reject[373]) == ("3", "2", "122", "1")
    assert harness.delivered == []
    assert harness.store.load()[1] == 3


def test_possdup_when_orig_sending_time_is_after_sending_time_then_rejected_and_logged_out() -> (
    None
):
    harness, peer = logged_on()

    harness.receive(peer.order(2, "B-2", possdup=True, original=harness.now + timedelta(seconds=5)))

    reject, logout = harness.take()
    assert (reject[35], reject[371], reject[373]) == ("3", "122", "10")
    assert logout[35] == "5"
    assert harness.closed is not None


# --- bad messages --------------------------------------------------------------------


def test_reject_when_sending_time_is_missing_then_tag_52_is_named_and_the_seq_counted() -> None:
    harness, peer = logged_on()
    header = ("49=POISE", "56=BROKER", "34=2")

    harness.receive(peer.message("D", 2, "11=B-2", header=header))

    (reject,) = harness.take()
    assert (reject[45], reject[371], reject[372], reject[373]) == ("2", "52", "D", "1")
    assert reject[58] == "Required tag missing: SendingTime(52)"
    assert harness.store.load()[1] == 3
    assert harness.closed is None


def test_reject_when_sending_time_is_off_the_clock_then_rejected_and_logged_out() -> None:
    harness, peer = logged_on()

    harness.receive(peer.order(2, "B-2", sent=harness.now - timedelta(minutes=3)))

    reject, logout = harness.take()
    assert (reject[371], reject[373]) == ("52", "10")
    assert logout[35] == "5"
    assert "SendingTime accuracy problem" in logout[58]
    assert harness.delivered == []
    assert harness.closed is not None


def test_sending_time_when_the_message_waited_on_this_side_then_it_is_judged_at_its_arrival() -> (
    None
):
    harness, peer = logged_on()
    arrived = harness.now
    order = peer.order(2, "B-2")
    harness.now += timedelta(minutes=3)  # booked what came before it for three minutes

    harness.receive(order, arrived=arrived)

    assert harness.delivered == [(2, "B-2", False)]
    assert harness.closed is None


def test_sending_time_when_a_refused_order_is_sent_again_after_logon_then_it_is_heard_once() -> (
    None
):
    harness, peer = logged_on()
    late = harness.now - timedelta(minutes=3)
    harness.receive(peer.order(2, "B-2", sent=late))
    assert harness.delivered == []
    assert harness.closed is not None
    assert harness.store.load()[1] == 3  # its number used up, as FIX asks

    again = Harness(BROKER, harness.store, refused=harness.machine.refused)
    peer = Counterparty(again)
    again.connect()
    again.receive(peer.logon(3))
    logon, resend = again.take()
    assert logon[35] == "A"
    assert (resend[35], resend[7], resend[16]) == ("2", "2", "2")
    copy = peer.order(2, "B-2", possdup=True, original=late)
    again.receive(copy)
    again.receive(copy)
    again.receive(peer.order(4, "B-4"))

    assert again.delivered == [(2, "B-2", True), (4, "B-4", False)]
    assert again.store.load()[1] == 5
    assert again.closed is None


def test_reject_when_the_comp_id_is_wrong_then_rejected_and_logged_out() -> None:
    harness, _ = logged_on()
    stranger = Counterparty(harness, sender="OTHER")

    harness.receive(stranger.order(2, "B-2"))

    reject, logout = harness.take()
    assert (reject[371], reject[373]) == ("49", "9")
    assert logout[58] == "CompID problem: SenderCompID(49) is OTHER, expected POISE"
    assert harness.closed == logout[58]


def test_garbled_when_a_message_does_not_add_up_then_it_is_ignored_and_the_session_goes_on() -> (
    None
):
    harness, peer = logged_on()
    good = peer.order(2, "B-2")
    broken = good[: good.rindex(b"10=")] + b"10=000\x01"

    harness.receive(broken)
    harness.receive(good)

    assert harness.take() == []
    assert harness.delivered == [(2, "B-2", False)]
    assert kinds(harness)[-1] is EventKind.GARBLED


# --- heartbeats and test requests ----------------------------------------------------


def test_heartbeat_when_nothing_was_sent_for_an_interval_then_one_is_sent() -> None:
    harness, peer = logged_on()

    harness.later(29)
    assert harness.take() == []
    harness.receive(peer.message("0", 2))
    harness.later(1)

    (heartbeat,) = harness.take()
    assert heartbeat[35] == "0"


def test_test_request_when_received_then_answered_with_its_id() -> None:
    harness, peer = logged_on()

    harness.receive(peer.message("1", 2, "112=ARE-YOU-THERE"))

    (heartbeat,) = harness.take()
    assert (heartbeat[35], heartbeat[112]) == ("0", "ARE-YOU-THERE")


def test_test_request_when_silence_lasts_then_one_is_sent_and_unanswered_ends_the_session() -> None:
    harness, _ = logged_on()

    harness.later(30)
    harness.take()  # our heartbeat
    harness.later(6)
    (test_request,) = harness.take()
    assert test_request[35] == "1"
    harness.later(36)

    assert harness.closed == f"TestRequest {test_request[112]} not answered"


def test_test_request_when_answered_then_the_session_goes_on() -> None:
    harness, peer = logged_on()
    harness.later(36)
    test_id = next(m[112] for m in harness.take() if m[35] == "1")

    harness.receive(peer.message("0", 2, f"112={test_id}"))
    harness.later(35)

    assert harness.closed is None


# --- resend requests and sequence resets ---------------------------------------------


def test_resend_request_when_answered_then_applications_come_again_and_admins_are_gap_filled() -> (
    None
):
    harness, peer = logged_on()  # our 1: the Logon
    first = harness.now
    harness.send_app(app_message("B-2"))  # 2
    harness.later(30)  # 3: a heartbeat
    harness.send_app(app_message("B-4"))  # 4
    harness.take()

    harness.receive(peer.message("2", 2, "7=1", "16=0"))

    fill_1, again_2, fill_3, again_4 = harness.take()
    assert (fill_1[35], fill_1[34], fill_1[123], fill_1[36], fill_1[43]) == (
        "4",
        "1",
        "Y",
        "2",
        "Y",
    )
    assert (again_2[35], again_2[34], again_2[11], again_2[43]) == ("8", "2", "B-2", "Y")
    assert again_2[122] == first.strftime("%Y%m%d-%H:%M:%S.000")
    assert (fill_3[34], fill_3[36]) == ("3", "4")
    assert (again_4[34], again_4[11], again_4[43]) == ("4", "B-4", "Y")
    assert harness.machine.next_sender == 5


def test_resend_request_when_the_range_ends_early_then_only_that_range_comes_again() -> None:
    harness, peer = logged_on()
    for name in ("B-2", "B-3", "B-4"):
        harness.send_app(app_message(name))
    harness.take()

    harness.receive(peer.message("2", 2, "7=3", "16=3"))

    (again,) = harness.take()
    assert (again[34], again[11]) == ("3", "B-3")


def test_simultaneous_resend_when_both_sides_ask_then_each_answers_and_both_gaps_close() -> None:
    store = MemoryStore()
    for seq in (1, 2, 3):
        store.save_outbound(seq, b"8=FIX.4.4\x019=5\x0135=0\x0110=000\x01")
    store.set_next_target(2)
    harness = Harness(store=store)
    peer = Counterparty(harness)
    harness.connect()

    harness.receive(peer.logon(5))  # expecting 2: 2..4 missing
    logon, our_request = harness.take()
    assert logon[35] == "A"
    assert (our_request[35], our_request[7]) == ("2", "2")

    harness.receive(peer.message("2", 6, "7=1", "16=0"))  # theirs, also early: answered at once
    (fill,) = harness.take()
    assert (fill[35], fill[34], fill[36]) == ("4", "1", "6")

    harness.receive(peer.message("4", 2, "123=Y", "36=5", possdup=True))  # our gap filled
    assert harness.store.load()[1] == 7  # 5 (their Logon) and 6 (their request) counted
    assert harness.take() == []  # their request is not answered twice
    assert EventKind.GAP_FILLED in kinds(harness)


def test_gap_fill_when_received_then_the_next_expected_jumps_to_new_seq_no() -> None:
    harness, peer = logged_on()

    harness.receive(peer.message("4", 2, "123=Y", "36=10", possdup=True))
    harness.receive(peer.order(10, "B-10"))

    assert harness.delivered == [(10, "B-10", False)]


def test_sequence_reset_when_it_raises_the_number_then_it_holds_whatever_its_own_seq() -> None:
    harness, peer = logged_on()

    harness.receive(peer.message("4", 99, "36=20"))

    assert harness.store.load()[1] == 20
    assert harness.take() == []


def test_sequence_reset_when_it_would_lower_the_number_then_rejected_and_not_lowered() -> None:
    harness, peer = logged_on()
    harness.receive(peer.message("4", 1, "36=8"))

    harness.receive(peer.message("4", 1, "36=3"))

    (reject,) = harness.take()
    assert (reject[35], reject[371], reject[373]) == ("3", "36", "5")
    assert harness.store.load()[1] == 8


# --- logout --------------------------------------------------------------------------


def test_logout_when_the_counterparty_asks_then_answered_and_closed_if_it_lingers() -> None:
    harness, peer = logged_on()

    harness.receive(peer.message("5", 2, "58=end of day"))

    (answer,) = harness.take()
    assert answer[35] == "5"
    assert harness.machine.state is State.LOGOUT_ANSWERED
    harness.later(2)
    assert harness.closed == "timed out: logout answered"


def test_logout_when_we_ask_then_the_counterparty_answer_ends_the_session() -> None:
    harness, peer = logged_on()

    harness.run(harness.machine.logout("end of day", harness.now))
    (logout,) = harness.take()
    harness.receive(peer.message("5", 2))

    assert logout[58] == "end of day"
    assert harness.closed == "logged out"


def test_logout_when_unanswered_then_the_session_closes_after_the_timeout() -> None:
    harness, _ = logged_on()

    harness.run(harness.machine.logout("", harness.now))
    harness.later(2)

    assert harness.closed == "timed out: logout sent"


def test_seal_when_messages_go_out_then_numbers_follow_on_and_the_header_is_ours() -> None:
    harness, _ = logged_on(BROKER)

    seq = harness.send_app(app_message("B-1"))

    (sent,) = harness.take()
    assert seq == 2
    assert (sent[8], sent[49], sent[56], sent[34]) == ("FIX.4.4", "BROKER", "POISE", "2")
