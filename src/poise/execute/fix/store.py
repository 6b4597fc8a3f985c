"""Where a session keeps its sequence numbers and the messages it sent.

``SessionStore`` is the port; a session calls nothing else to persist. ``FileStore`` is
the file-based implementation (the simulated broker's, and any initiator's without a
database); ``MemoryStore`` forgets on exit (tests, throwaway sessions). The gateway
keeps its sessions in the system of record through its own implementation.

``FileStore`` is one append-only log per session, each record fsynced before the call
returns: an outbound message with its sequence number, the next expected inbound
sequence number, in the order they happened. A record torn by a crash is the last one,
and is ignored (and cut off) when the log is read back; a damaged record before the
last is an error, never skipped.
"""

from __future__ import annotations

import fcntl
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from poise.execute.fix.errors import SessionStoreError

__all__ = ["FileStore", "MemoryStore", "SessionStore"]


class SessionStore(Protocol):
    """A session's durable state: the next sequence numbers, and what was sent."""

    def load(self) -> tuple[int, int]:
        """(next sender seq, next target seq)."""
        ...

    def save_outbound(self, seq: int, raw: bytes, extra: object = None) -> None:
        """Keep the message sent as ``seq``, durably; the next sender seq becomes
        ``seq + 1``. ``extra`` is handed through from ``Session.send`` untouched (a
        database store makes its own bookkeeping atomic with storing the message)."""
        ...

    def set_next_target(self, seq: int) -> None:
        """The next inbound sequence number expected, durably."""
        ...

    # A store may also have ``save_outbound_many(items)``, ``items`` a list of
    # ``(seq, raw, extra)`` in order: all kept in one durable write, as
    # ``save_outbound`` keeps each (``Session.send_many`` uses it where it is there).

    def outbound(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """The messages kept with ``begin <= seq <= end`` (``end`` 0: no upper end), in
        order of sequence number."""
        ...

    def reset(self) -> None:
        """Both sequence numbers back to 1; the messages kept are dropped."""
        ...


class MemoryStore:
    """A ``SessionStore`` in memory: gone when the process ends."""

    def __init__(self) -> None:
        self._next_sender = 1
        self._next_target = 1
        self._messages: dict[int, bytes] = {}

    def load(self) -> tuple[int, int]:
        return self._next_sender, self._next_target

    def save_outbound(self, seq: int, raw: bytes, extra: object = None) -> None:
        self._messages[seq] = raw
        self._next_sender = seq + 1

    def set_next_target(self, seq: int) -> None:
        self._next_target = seq

    def outbound(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        return [
            (seq, raw)
            for seq, raw in sorted(self._messages.items())
            if seq >= begin and (end == 0 or seq <= end)
        ]

    def reset(self) -> None:
        self._next_sender = 1
        self._next_target = 1
        self._messages.clear()


# A record: a header line "<kind> <seq> <length> <crc32 of the payload, hex>\n", then
# the payload and "\n". Kinds: O (an outbound message; the payload is its bytes) and
# T (the next target seq; no payload).
_HEADER = re.compile(rb"([OT]) (\d{1,12}) (\d{1,9}) ([0-9a-f]{8})\n")
_HEADER_MAX = 40
_COMPACT_AFTER = 10_000  # target records past which opening rewrites the log shorter


class FileStore:
    """A ``SessionStore`` in ``directory``/``session_key``.log, crash-safe.

    One process at a time: the log is locked while the store is open (a second opener
    gets a ``SessionStoreError``). ``close`` releases it.
    """

    def __init__(self, directory: str | os.PathLike[str], session_key: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", session_key):
            raise SessionStoreError(f"session key {session_key!r}: letters, digits, . _ - only")
        self.path = Path(directory) / f"{session_key}.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise SessionStoreError(f"{self.path} is in use by another process") from None
        self._next_sender = 1
        self._next_target = 1
        self._index: dict[int, tuple[int, int]] = {}  # seq -> (offset of payload, length)
        self._targets = 0
        self._read()
        if self._targets > _COMPACT_AFTER:
            self._compact()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def load(self) -> tuple[int, int]:
        return self._next_sender, self._next_target

    def save_outbound(self, seq: int, raw: bytes, extra: object = None) -> None:
        offset = self._append(b"O", seq, raw)
        self._index[seq] = (offset, len(raw))
        self._next_sender = seq + 1

    def save_outbound_many(self, items: Sequence[tuple[int, bytes, object]]) -> None:
        """Keep several messages sent, in one write and one fsync."""
        if not items:
            return
        records = [self._record(b"O", seq, raw) for seq, raw, _ in items]
        offset = self._write(b"".join(header + body for header, body in records))
        for (seq, raw, _), (header, body) in zip(items, records, strict=True):
            self._index[seq] = (offset + len(header), len(raw))
            offset += len(header) + len(body)
        self._next_sender = items[-1][0] + 1

    def set_next_target(self, seq: int) -> None:
        self._append(b"T", seq, b"")
        self._next_target = seq
        self._targets += 1

    def outbound(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        return [
            (seq, os.pread(self._fd, length, offset))
            for seq, (offset, length) in sorted(self._index.items())
            if seq >= begin and (end == 0 or seq <= end)
        ]

    def reset(self) -> None:
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self._next_sender = 1
        self._next_target = 1
        self._index.clear()
        self._targets = 0

    def _append(self, kind: bytes, seq: int, payload: bytes) -> int:
        """Write one record and fsync it; return where its payload starts."""
        header, body = self._record(kind, seq, payload)
        return self._write(header + body) + len(header)

    @staticmethod
    def _record(kind: bytes, seq: int, payload: bytes) -> tuple[bytes, bytes]:
        """One record: its header line, and its payload with the newline that ends it."""
        return b"%s %d %d %08x\n" % (kind, seq, len(payload), zlib.crc32(payload)), payload + b"\n"

    def _write(self, records: bytes) -> int:
        """Write ``records`` at the end of the log and fsync; return where they start."""
        offset = os.lseek(self._fd, 0, os.SEEK_END)
        written = 0
        while written < len(records):
            written += os.write(self._fd, records[written:])
        os.fsync(self._fd)
        return offset

    def _read(self) -> None:
        data = self.path.read_bytes()
        at = 0
        while at < len(data):
            header = _HEADER.match(data, at, min(len(data), at + _HEADER_MAX))
            payload = header.end() if header else 0
            length = int(header.group(3)) if header else 0
            end = payload + length + 1
            if (
                header is None
                or end > len(data)
                or data[end - 1 : end] != b"\n"
                or zlib.crc32(data[payload : end - 1]) != int(header.group(4), 16)
            ):
                if _rest_is_torn(data, at):
                    os.ftruncate(
                        self._fd, at
                    )  # the torn record goes; appends follow the last good one
                    os.fsync(self._fd)
                    return
                raise SessionStoreError(f"{self.path}: the record at byte {at} is damaged")
            kind, seq = header.group(1), int(header.group(2))
            if kind == b"O":
                self._index[seq] = (payload, length)
                self._next_sender = seq + 1
            else:
                self._next_target = seq
                self._targets += 1
            at = end

    def _compact(self) -> None:
        """Rewrite the log as its messages and one target record, atomically."""
        kept = self.outbound(1, 0)
        fresh = self.path.with_suffix(".compacting")
        with fresh.open("wb") as out:
            for seq, raw in kept:
                out.write(b"O %d %d %08x\n%s\n" % (seq, len(raw), zlib.crc32(raw), raw))
            out.write(b"T %d 0 %08x\n\n" % (self._next_target, zlib.crc32(b"")))
            out.flush()
            os.fsync(out.fileno())
        next_sender = self._next_sender
        os.replace(fresh, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self.close()
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._index.clear()
        self._targets = 0
        self._read()
        self._next_sender = max(self._next_sender, next_sender)


def _rest_is_torn(data: bytes, at: int) -> bool:
    """True when no whole record follows ``at``: what is there is the tail of a write a
    crash cut short, not a record damaged in the middle of the log."""
    for found in _HEADER.finditer(data, at + 1):
        length = int(found.group(3))
        end = found.end() + length + 1
        if end <= len(data) and zlib.crc32(data[found.end() : end - 1]) == int(found.group(4), 16):
            return False
    return True
