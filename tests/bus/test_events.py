"""Events and subjects: ids of any shape become safe subject tokens and come back intact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.bus.events import (
    Event,
    escape_token,
    family_of,
    price_subject,
    request_subject,
    subject_matches,
    unescape_token,
)
from poise.domain.errors import ValidationError


@given(st.text(min_size=1))
def test_escape_when_an_id_is_any_text_then_the_token_is_safe_and_unescapes_to_it(
    text: str,
) -> None:
    token = escape_token(text)
    assert token.isascii()
    assert not set(token) & {".", "*", ">", " ", "\t", "\n"}
    assert unescape_token(token) == text
    assert family_of(request_subject(text)) == "poise.requests"


@pytest.mark.parametrize(
    ("identifier", "token"),
    [
        ("A1", "A1"),
        ("H.1", "H%2E1"),
        ("10000001", "10000001"),
        ("BRK.B", "BRK%2EB"),
        ("smith family", "smith%20family"),
        ("50%", "50%25"),
        ("acct_7-b", "acct_7-b"),
    ],
)
def test_escape_when_an_id_has_dots_spaces_or_percents_then_they_are_percent_encoded(
    identifier: str, token: str
) -> None:
    assert escape_token(identifier) == token


@pytest.mark.parametrize("token", ["", "a.b", "a b", "%2e", "%G1", "%", "%FF", "*", ">"])
def test_unescape_when_the_token_is_not_one_escape_token_makes_then_validation_error(
    token: str,
) -> None:
    with pytest.raises(ValidationError):
        unescape_token(token)


def test_escape_when_the_id_is_empty_then_validation_error() -> None:
    with pytest.raises(ValidationError):
        escape_token("")


def test_event_when_written_and_read_back_then_it_is_equal_and_keys_are_sorted() -> None:
    event = Event(
        price_subject("BRK.B"), "px-2024-06-28-BRK.B", {"date": "2024-06-28", "close": "407.39"}
    )

    data = event.to_bytes()

    assert data == (
        b'{"event_id":"px-2024-06-28-BRK.B",'
        b'"payload":{"close":"407.39","date":"2024-06-28"},'
        b'"subject":"poise.prices.BRK%2EB"}'
    )
    assert Event.from_bytes(data) == event


def test_event_when_built_then_its_payload_is_a_read_only_json_copy() -> None:
    source = {"accounts": ("A1", "A2"), "reason": "drift"}
    event = Event(request_subject("H.1"), "rq-1", source)
    source["reason"] = "changed afterwards"

    assert event.payload == {"accounts": ["A1", "A2"], "reason": "drift"}
    with pytest.raises(TypeError):
        event.payload["reason"] = "changed"  # type: ignore[index]


@pytest.mark.parametrize(
    "payload",
    [{"cash": Decimal("10.00")}, {"weight": float("nan")}, {"when": object()}],
)
def test_event_when_the_payload_is_not_json_then_validation_error(
    payload: dict[str, object],
) -> None:
    with pytest.raises(ValidationError, match="not JSON"):
        Event(request_subject("A1"), "rq-1", payload)


@pytest.mark.parametrize(
    "subject",
    [
        "poise.requests",
        "poise.trades.A1",
        "poise.requests.A 1",
        "poise.requests.>",
        "poise..A1",
        "",
    ],
)
def test_event_when_the_subject_is_not_one_event_subject_then_validation_error(
    subject: str,
) -> None:
    with pytest.raises(ValidationError):
        Event(subject, "rq-1", {})


def test_event_when_the_id_is_empty_then_validation_error() -> None:
    with pytest.raises(ValidationError):
        Event(request_subject("A1"), "", {})


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"\xff",
        b"[]",
        b'{"subject":"poise.requests.A1","event_id":"rq-1"}',
        b'{"subject":"poise.requests.A1","event_id":1,"payload":{}}',
        b'{"subject":"poise.requests.A1","event_id":"rq-1","payload":[]}',
        b'{"subject":"poise.requests.A1","event_id":"rq-1","payload":{},"extra":1}',
    ],
)
def test_from_bytes_when_the_bytes_are_not_an_event_then_validation_error(data: bytes) -> None:
    with pytest.raises(ValidationError):
        Event.from_bytes(data)


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("poise.requests.>", "poise.requests.A1", True),
        ("poise.requests.>", "poise.requests.H%2E1", True),
        ("poise.requests.>", "poise.requests", False),
        ("poise.requests.*", "poise.requests.A1", True),
        ("poise.requests.*", "poise.requests.A1.x", False),
        ("poise.requests.A1", "poise.requests.A1", True),
        ("poise.requests.A1", "poise.requests.A2", False),
        ("poise.*.A1", "poise.prices.A1", True),
    ],
)
def test_subject_matches_when_pattern_has_wildcards_then_it_follows_nats_rules(
    pattern: str, subject: str, matches: bool
) -> None:
    assert subject_matches(pattern, subject) is matches
