"""FIX frames written by hand for the tests: BodyLength and CheckSum counted here, not
by the code under test (CheckSum: the sum of the bytes before it, modulo 256)."""

from __future__ import annotations

SOH = b"\x01"


def body_of(*fields: str) -> bytes:
    """``"35=0", "49=A"`` -> the bytes of those fields, each ended by SOH."""
    return b"".join(f.encode() + SOH for f in fields)


def frame(*fields: str, begin: str = "FIX.4.4") -> bytes:
    """A whole message: BeginString, BodyLength, the fields, CheckSum."""
    body = body_of(*fields)
    head = f"8={begin}".encode() + SOH + f"9={len(body)}".encode() + SOH
    total = sum(head + body) % 256
    return head + body + f"10={total:03d}".encode() + SOH


def with_checksum(raw: bytes, value: int) -> bytes:
    """``raw`` with its CheckSum replaced by ``value``."""
    return raw[: raw.rindex(b"10=")] + f"10={value:03d}".encode() + SOH


def with_body_length(raw: bytes, value: int) -> bytes:
    """``raw`` with its BodyLength replaced by ``value`` (the CheckSum recomputed, so
    only the length is wrong)."""
    start = raw.index(b"9=")
    end = raw.index(SOH, start)
    changed = raw[:start] + f"9={value}".encode() + raw[end : raw.rindex(b"10=")]
    return changed + f"10={sum(changed) % 256:03d}".encode() + SOH


def fields_of(raw: bytes) -> list[tuple[int, str]]:
    """The tag=value pairs of a frame, in order."""
    return [
        (int(tag), value.decode())
        for tag, value in (pair.split(b"=", 1) for pair in raw.split(SOH) if pair)
    ]


def as_dict(raw: bytes) -> dict[int, str]:
    return dict(fields_of(raw))
