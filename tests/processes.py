"""The ``poise`` command as a real process, the way an operations person or a script runs it.

Each run gets the database through ``POISE_DATABASE_URL``. ``as_other_user`` runs it as
a user without special powers (``nobody``) when the suite runs as root, who may write
any file: that is how a read-only file or folder is read-only for real.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

POISE = Path(sys.executable).with_name("poise")
NOBODY = 65534


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _command(args: tuple[str, ...], *, as_other_user: bool) -> list[str]:
    command = [str(POISE), *args]
    if not as_other_user or os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: no user for whom a file is read-only")
    ids = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return [setpriv, *ids, *command]


def _env(database_url: str, cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POISE_")}
    return {**env, "POISE_DATABASE_URL": database_url, "HOME": str(cwd), "COLUMNS": "200"}


def start_poise(
    *args: str, database_url: str, cwd: Path, settings: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """``poise`` started, not awaited; ``settings``: more environment (``POISE_*``)."""
    return subprocess.Popen(
        _command(args, as_other_user=False),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**_env(database_url, cwd), **(settings or {})},
    )


def run_poise(
    *args: str,
    database_url: str,
    cwd: Path,
    as_other_user: bool = False,
    timeout: float = 300,
    stdin: str | None = None,
) -> Run:
    done = subprocess.run(
        _command(args, as_other_user=as_other_user),
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(database_url, cwd),
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def finish(process: subprocess.Popen[str], timeout: float = 300) -> Run:
    stdout, stderr = process.communicate(timeout=timeout)
    return Run(process.returncode, stdout, stderr)


def free_port() -> int:
    """A port on loopback nobody listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(base: str, process: subprocess.Popen[str], seconds: float = 30) -> None:
    """Until ``poise serve`` at ``base`` says it is ready (or has died, or is late)."""
    import httpx  # noqa: PLC0415 - only the tests that start a server need it

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/api/v1/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "poise serve did not start"
        time.sleep(0.2)
