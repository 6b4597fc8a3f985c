"""What the browser tests share: Debian's Chromium (Playwright never downloads one), a
real ``poise serve`` on a store the test made, and the users it signs in as."""

from __future__ import annotations

import collections
import os
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
from tests.processes import free_port, run_poise, start_poise, wait_ready

__all__ = ["CHROMIUM", "add_users", "need_chromium", "serve"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def need_chromium() -> None:
    """Skip without Chromium — but fail in CI, where ``./dev test`` installs it."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("no chromium: ./dev test installs Debian's package")
        pytest.skip("no chromium: ./dev test installs Debian's package")


def add_users(
    users: Mapping[str, tuple[Sequence[str], str]], *, database_url: str, folder: Path
) -> None:
    """Each user added as ``poise users add NAME ARGS --password-stdin`` adds one:
    ``users`` maps a name to its arguments (role, households) and password."""
    for name, (args, password) in users.items():
        added = run_poise(
            "users", "add", name, *args, "--password-stdin",
            database_url=database_url, cwd=folder, stdin=password + "\n",
        )  # fmt: skip
        assert added.code == 0, added.stderr


@contextmanager
def serve(
    *, database_url: str, folder: Path, settings: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``poise serve`` on a free port, once it is ready: its base URL (``localhost``,
    which browsers hold secure, so the session cookie travels over plain HTTP)."""
    port = free_port()
    process = start_poise("serve", "--port", str(port), database_url=database_url,
                          cwd=folder, settings=settings)  # fmt: skip
    base = f"http://localhost:{port}"
    readers: list[threading.Thread] = []
    try:
        wait_ready(base, process)
        readers = [_drain(pipe) for pipe in (process.stdout, process.stderr) if pipe]
        yield base
    finally:
        process.terminate()
        if readers:
            process.wait(timeout=60)
            for reader in readers:
                reader.join(timeout=60)
        else:
            process.communicate(timeout=60)


def _drain(pipe: IO[str]) -> threading.Thread:
    """Read what the server writes, as it writes it: a pipe nobody reads holds 64 KB —
    a few hundred requests' log lines — and then stops the server at its next line,
    every page after that waiting for it."""
    reader = threading.Thread(target=lambda: collections.deque(pipe, maxlen=0), daemon=True)
    reader.start()
    return reader
