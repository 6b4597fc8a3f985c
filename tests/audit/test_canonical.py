"""Canonical JSON and an entry's leaf: the fast writer gives the very bytes json.dumps
gives (which is all the stand-alone verifier has), whatever the text holds."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poise.audit.canonical import at_text, canonical_json, data_hash, leaf_bytes, leaf_parts
from poise.domain.errors import ValidationError

text = st.text()  # every code point: quotes, backslashes, controls, accents, emoji


@given(
    seq=st.integers(0, 2**53),
    actor=text,
    action=text,
    subject=text,
    reason=text,
    data=text,
    corrects=st.none() | st.integers(0, 2**53),
    prev=text,
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_leaf_bytes_when_written_fast_then_they_are_json_dumps_canonical_bytes(
    *,
    seq: int,
    actor: str,
    action: str,
    subject: str,
    reason: str,
    data: str,
    corrects: int | None,
    prev: str,
    at: datetime,
) -> None:
    fields = {
        "seq": seq,
        "at": at_text(at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "reason": reason,
        "data_hash": data,
        "corrects": corrects,
        "prev_hash": prev,
    }
    expected = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert leaf_bytes(**fields) == expected.encode("utf-8")


@given(
    seq=st.integers(0, 2**62),
    actor=text,
    action=text,
    subject=text,
    reason=text,
    data=text,
    corrects=st.none() | st.integers(0, 2**53),
    prev=st.just("") | st.binary(min_size=32, max_size=32).map(bytes.hex),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_leaf_parts_when_joined_around_the_place_then_they_are_the_leaf_hashed(
    *,
    seq: int,
    actor: str,
    action: str,
    subject: str,
    reason: str,
    data: str,
    corrects: int | None,
    prev: str,
    at: datetime,
) -> None:
    """What PostgreSQL hashes where it knows an entry's place: the pieces, the previous
    leaf hash in hex and the seq in decimal between them — the leaf's own bytes."""
    fields = {"at": at_text(at), "actor": actor, "action": action, "subject": subject,
              "reason": reason, "data_hash": data, "corrects": corrects}  # fmt: skip
    head, middle, tail = leaf_parts(**fields)
    joined = head + prev.encode() + middle + str(seq).encode() + tail
    assert joined == b"\x00" + leaf_bytes(seq=seq, prev_hash=prev, **fields)


def test_canonical_json_when_given_money_dates_and_nesting_then_it_is_one_text() -> None:
    value = {
        "b": [Decimal("1.50"), date(2026, 12, 6)],
        "a": {"z": None, "y": True, "at": datetime(2026, 12, 6, 12, 0, tzinfo=UTC)},
    }
    assert canonical_json(value) == (
        b'{"a":{"at":"2026-12-06T12:00:00.000000Z","y":true,"z":null},"b":["1.50","2026-12-06"]}'
    )
    assert data_hash(value) == data_hash(dict(reversed(list(value.items()))))
    assert canonical_json({"name": "Zoë"}) == '{"name":"Zoë"}'.encode()


@pytest.mark.parametrize(
    "bad", [{"x": 1.5}, {"x": Decimal("NaN")}, {1: "a"}, {"x": b"raw"}, {"x": object()}]
)
def test_canonical_json_when_a_value_has_no_one_text_then_it_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError):
        canonical_json(bad)
