"""``poise cluster`` as a real process — a run's tasks go to it, the dashboard answers,
Ctrl-C stops it cleanly — and the progress a run shows on a terminal."""

from __future__ import annotations

import io
import json
import signal
import socket
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console
from tests.processes import finish, start_poise
from tests.workflow.fanout_tasks import Firm, tax

from poise.cli.runs import RunProgress
from poise.workflow.fanout import DaskCluster, Done, Failed, fan_out

ROOT = Path(__file__).resolve().parents[2]


def test_cluster_when_started_then_runs_fan_out_to_it_and_ctrl_c_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # its workers unpickle the tests' tasks
    process = start_poise(
        "cluster",
        *("--workers", "2", "--port", "0", "--dashboard-port", "0", "--json"),
        database_url=f"sqlite:///{tmp_path / 'poise.db'}",
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != "}":  # one JSON document, written at once
            line = process.stdout.readline()
            assert line, f"poise cluster ended: {process.stderr and process.stderr.read()}"
            lines.append(line.rstrip("\n"))
        started = json.loads("\n".join(lines))
        address = started["scheduler"]
        assert address.startswith("tcp://127.0.0.1:")
        assert (started["workers"], started["threads_per_worker"]) == (2, 1)

        firm = Firm({"A": 2, "B": 3}, failing=frozenset({"B2"}))
        households = ["A1", "A2", "B1", "B2", "B3"]
        with fan_out(tax, households, shared=firm, fanout=DaskCluster(address)) as run:
            outcomes = {o.task: o for o in run}
        assert {h: o.value for h, o in outcomes.items() if isinstance(o, Done)} == {
            "A1": 2,
            "A2": 4,
            "B1": 3,
            "B3": 9,
        }
        failed = outcomes["B2"]
        assert isinstance(failed, Failed)
        assert failed.failure.reason == "ValueError: no lots for B2"

        with urllib.request.urlopen(started["dashboard"], timeout=10) as page:
            assert page.status == 200
            assert b"bokeh" in page.read().lower()  # the dashboard itself, not its apology
    finally:
        process.send_signal(signal.SIGINT)
        stopped = finish(process, timeout=30)
    assert stopped.code == 0, stopped.stderr
    assert stopped.error_lines[-2:] == ["stopping the cluster", "stopped"]
    assert "Traceback" not in stopped.stderr
    port = int(address.rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError):  # nothing listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _terminal() -> tuple[Console, io.StringIO]:
    screen = io.StringIO()
    return Console(file=screen, force_terminal=True, width=120), screen


def test_run_progress_when_households_finish_then_done_total_failures_and_rate_show() -> None:
    """Three households of 10 were done by an earlier attempt; five more finish now, one
    of them failed."""
    console, screen = _terminal()
    with RunProgress(total=10, resumed=3, console=console) as bar:
        for failed in (False, True, False, False, False):
            bar.advance(failed=failed)
        bar._progress.refresh()
        assert (bar.done, bar.failed) == (8, 1)
    shown = screen.getvalue()
    assert "rebalancing households" in shown
    assert "8/10" in shown
    assert "1 failed" in shown
    assert "/s" in shown
    assert "eta" in shown


def test_run_progress_when_json_or_not_a_terminal_then_nothing_is_shown() -> None:
    console, screen = _terminal()
    with RunProgress(total=4, enabled=False, console=console) as bar:  # --json
        bar.update(done=4, failed=2)
    assert screen.getvalue() == ""
    log = io.StringIO()
    with RunProgress(total=4, console=Console(file=log, force_terminal=False)) as bar:
        bar.update(done=4, failed=2)
    assert log.getvalue() == ""
