"""QuickFIX's example ``executor``: a FIX engine nobody here wrote, as a counterparty.

Debian's ``libquickfix-doc`` ships it prebuilt (gzipped; it needs ``libquickfix17``),
and the test command installs both. It accepts FIX 4.0–4.4 sessions and fills every
limit order at once, in full, at its limit price (ExecType F, OrdStatus 2); anything
else it rejects.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

EXECUTOR = Path("/usr/share/doc/libquickfix-doc/examples/executor/C++/.libs/executor.gz")
SENDER = "EXECUTOR"  # its SenderCompID; ours is its TargetCompID
CONFIG = """\
[DEFAULT]
ConnectionType=acceptor
FileStorePath={root}/store
FileLogPath={root}/log
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=N
SocketAcceptPort={port}
ResetOnLogon={reset}

[SESSION]
BeginString=FIX.4.4
SenderCompID={sender}
TargetCompID={target}
HeartBtInt=30
"""


def executor_binary(directory: Path) -> Path:
    """The executor, unpacked into ``directory``; the test is failed in CI (the test
    command installs it) and skipped elsewhere when it is not installed."""
    if not EXECUTOR.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{EXECUTOR} is missing: the test command installs libquickfix-doc")
        pytest.skip("QuickFIX's executor is not installed (apt install libquickfix-doc)")
    binary = directory / "executor"
    with gzip.open(EXECUTOR) as packed, binary.open("wb") as out:
        shutil.copyfileobj(packed, out)
    binary.chmod(0o755)
    return binary


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def executor(
    directory: Path, port: int, *, target: str = "POISE", reset: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """The executor listening on ``port`` for ``target``'s session, stopped after."""
    binary = executor_binary(directory)
    (directory / "store").mkdir(exist_ok=True)
    (directory / "log").mkdir(exist_ok=True)
    config = directory / "executor.cfg"
    config.write_text(
        CONFIG.format(
            root=directory, port=port, reset="Y" if reset else "N", sender=SENDER, target=target
        )
    )
    process = subprocess.Popen(
        [str(binary), str(config)],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"QuickFIX's executor did not listen on {port}")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
