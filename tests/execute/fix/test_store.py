"""A session's store: what it sent and where the numbers stand survive a restart, and
a crash in the middle of a write costs at most that one record."""

from __future__ import annotations

from pathlib import Path

import pytest

from poise.execute.fix.errors import SessionStoreError
from poise.execute.fix.store import FileStore, MemoryStore, SessionStore


def store_of(kind: str, directory: Path) -> SessionStore:
    return FileStore(directory, "FIX.4.4-BROKER-POISE") if kind == "file" else MemoryStore()


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_store_when_messages_are_saved_then_numbers_advance_and_ranges_read_back(
    kind: str, tmp_path: Path
) -> None:
    store = store_of(kind, tmp_path)
    assert store.load() == (1, 1)

    for seq in (1, 2, 3, 5):
        store.save_outbound(seq, f"message {seq}".encode())
    store.set_next_target(7)

    assert store.load() == (6, 7)
    assert store.outbound(2, 3) == [(2, b"message 2"), (3, b"message 3")]
    assert store.outbound(3, 0) == [(3, b"message 3"), (5, b"message 5")]
    assert store.outbound(6, 0) == []


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_store_when_reset_then_both_numbers_are_one_and_nothing_is_kept(
    kind: str, tmp_path: Path
) -> None:
    store = store_of(kind, tmp_path)
    store.save_outbound(1, b"logon")
    store.set_next_target(2)

    store.reset()

    assert store.load() == (1, 1)
    assert store.outbound(1, 0) == []


def test_file_store_when_reopened_then_it_continues_where_it_stood(tmp_path: Path) -> None:
    store = FileStore(tmp_path, "S")
    store.save_outbound(1, b"8=FIX.4.4\x01first")
    store.save_outbound(2, b"second\nwith a newline")
    store.set_next_target(4)
    store.close()

    again = FileStore(tmp_path, "S")

    assert again.load() == (3, 4)
    assert again.outbound(1, 0) == [(1, b"8=FIX.4.4\x01first"), (2, b"second\nwith a newline")]


def test_file_store_when_reset_and_reopened_then_it_starts_at_one(tmp_path: Path) -> None:
    store = FileStore(tmp_path, "S")
    store.save_outbound(1, b"old")
    store.reset()
    store.save_outbound(1, b"new")
    store.close()

    again = FileStore(tmp_path, "S")

    assert again.load() == (2, 1)
    assert again.outbound(1, 0) == [(1, b"new")]


@pytest.mark.parametrize("cut", [1, 5, 12, 20])
def test_file_store_when_the_last_record_is_torn_then_it_is_ignored_and_appends_go_on(
    tmp_path: Path, cut: int
) -> None:
    store = FileStore(tmp_path, "S")
    store.save_outbound(1, b"kept")
    store.set_next_target(2)
    whole = store.path.stat().st_size
    store.save_outbound(2, b"torn by a crash")
    store.close()
    with store.path.open("r+b") as log:  # the crash: the last write only partly on disk
        log.truncate(whole + cut)

    again = FileStore(tmp_path, "S")
    assert again.load() == (2, 2)
    assert again.outbound(1, 0) == [(1, b"kept")]
    again.save_outbound(2, b"sent again")
    again.close()

    assert FileStore(tmp_path, "S").outbound(1, 0) == [(1, b"kept"), (2, b"sent again")]


def test_file_store_when_a_record_before_the_last_is_damaged_then_it_refuses_to_open(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path, "S")
    store.save_outbound(1, b"first message")
    store.save_outbound(2, b"second message")
    store.close()
    data = bytearray(store.path.read_bytes())
    data[data.index(b"first")] = ord("F")
    store.path.write_bytes(bytes(data))

    with pytest.raises(SessionStoreError, match="damaged"):
        FileStore(tmp_path, "S")


def test_file_store_when_open_twice_then_the_second_is_refused(tmp_path: Path) -> None:
    store = FileStore(tmp_path, "S")

    with pytest.raises(SessionStoreError, match="in use"):
        FileStore(tmp_path, "S")
    store.close()
    FileStore(tmp_path, "S").close()


def test_file_store_when_many_targets_were_kept_then_opening_compacts_and_keeps_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("poise.execute.fix.store._COMPACT_AFTER", 10)
    store = FileStore(tmp_path, "S")
    store.save_outbound(1, b"order")
    for seq in range(2, 40):
        store.set_next_target(seq)
    store.save_outbound(2, b"report")
    store.close()
    before = store.path.stat().st_size

    again = FileStore(tmp_path, "S")

    assert again.path.stat().st_size < before / 4
    assert again.load() == (3, 39)
    assert again.outbound(1, 0) == [(1, b"order"), (2, b"report")]
