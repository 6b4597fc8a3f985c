"""Firm-wide runs: ``poise cluster`` (a local Dask cluster that runs fan out to), and the
progress a run shows on a terminal (:class:`RunProgress`)."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from poise.cli.common import (
    DatabaseOption,
    JsonOption,
    _engine,
    _print_json,
    app,
    command_group,
    err,
    out,
)

if TYPE_CHECKING:  # the heavy modules load inside the commands that use them
    from rich.console import Console
    from rich.progress import Progress, Task, TaskID
    from rich.text import Text


__all__ = ["RunProgress", "cluster", "runs_list", "runs_show"]

SCHEDULER_PORT = 8786  # Dask's own defaults, so that its tools find the cluster
DASHBOARD_PORT = 8787


# ── progress ─────────────────────────────────────────────────────────────────


def _rate_column() -> type:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        """Households a second, over the last 30 s."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if speed is None:
                return Text("–/s", style="progress.data.speed")
            shown = f"{speed:.1f}/s" if speed < 10 else f"{speed:,.0f}/s"
            return Text(shown, style="progress.data.speed")

    return Rate


class RunProgress:
    """A run's households on standard error: done of total, a bar, the failures so far,
    households a second and the time left. Silent when ``enabled`` is false (``--json``)
    or standard error is not a terminal (a log, a pipe)::

        with RunProgress(total=len(households), resumed=len(done), enabled=not as_json) as bar:
            for outcome in outcomes:
                ...  # keep it
                bar.advance(failed=isinstance(outcome, Failed))
    """

    def __init__(
        self,
        *,
        total: int,
        resumed: int = 0,
        description: str = "rebalancing households",
        enabled: bool = True,
        console: Console | None = None,
    ) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = console or err
        self._progress: Progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failures]}", style="red"),
            _rate_column()(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not enabled or not console.is_terminal,
        )
        self.done = resumed  # households done or failed, an earlier attempt's included
        self.failed = 0
        self._task: TaskID = self._progress.add_task(
            description, total=total, completed=resumed, failures=""
        )

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def advance(self, *, failed: bool = False) -> None:
        """One more household finished (``failed``: with a failure)."""
        self.update(done=self.done + 1, failed=self.failed + failed)

    def update(self, *, done: int, failed: int) -> None:
        """``done`` households finished so far (failures included), ``failed`` of them
        failed."""
        self.done, self.failed = done, failed
        failures = f"{failed:,} failed" if failed else ""
        self._progress.update(self._task, completed=done, failures=failures)


# ── poise cluster ────────────────────────────────────────────────────────────


@app.command()
def cluster(
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes. Default: one per CPU.", show_default=False),
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="Threads in each worker process.")
    ] = 1,
    host: Annotated[
        str,
        typer.Option(
            help="The address to listen on: 127.0.0.1 for this machine only; this"
            " machine's address on the network for runs and workers elsewhere."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, help="The scheduler's port (0: any free one).")] = (
        SCHEDULER_PORT
    ),
    dashboard_port: Annotated[
        int, typer.Option(min=0, help="The dashboard's port (0: any free one).")
    ] = DASHBOARD_PORT,
    as_json: JsonOption = False,
) -> None:
    """Start a local Dask cluster for firm-wide runs, and keep it until Ctrl-C.

    Prints the scheduler's address, the dashboard's link and the line that points runs
    at it (export POISE_DASK_SCHEDULER=...). More workers, on other machines too, join
    with `dask worker ADDRESS` (poise must be installed where they run).
    """
    from poise.workflow.fanout import cpu_count

    count = workers or cpu_count()
    # Ctrl-C reaches every process of the terminal's job: the workers start with it
    # ignored (a signal ignored stays ignored in a process started from this one), and
    # this process alone stops them, in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    running = _start_cluster(
        workers=count, threads=threads, host=host, port=port, dashboard_port=dashboard_port
    )
    address, dashboard = running.scheduler_address, running.dashboard_link
    if as_json:
        _print_json(
            {
                "scheduler": address,
                "dashboard": dashboard,
                "workers": count,
                "threads_per_worker": threads,
            }
        )
    else:
        out.print(f"scheduler  {address}", highlight=False)
        out.print(f"dashboard  {dashboard}", highlight=False)
        out.print(f"workers    {count} × {threads} thread{'s' if threads > 1 else ''}")
        out.print(f"\nexport POISE_DASK_SCHEDULER={address}", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    err.print("running until Ctrl-C")
    _wait_for_a_stop()
    err.print("stopping the cluster")
    running.close()
    err.print("stopped")


def _start_cluster(*, workers: int, threads: int, host: str, port: int, dashboard_port: int) -> Any:
    from distributed import LocalCluster

    from poise.domain.errors import ConfigError

    try:
        return LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            host=host,
            scheduler_port=port,
            dashboard_address=f"{host}:{dashboard_port}",
        )
    except (OSError, RuntimeError) as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"cannot start a cluster on {host}:{port}: {cause} — is a cluster already"
            " running there? (--host, --port; --port 0 takes any free port)"
        ) from None


def _wait_for_a_stop() -> None:
    """Until SIGINT (Ctrl-C) or SIGTERM."""
    stop = threading.Event()

    def on_signal(_number: int, _frame: FrameType | None) -> None:
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, on_signal)
    while not stop.wait(0.2):
        pass


# ── poise runs ───────────────────────────────────────────────────────────────

runs_app = command_group("Firm-wide rebalancing runs: list them, or show one.")
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
    status: Annotated[
        str | None, typer.Option(help="Only runs of this status: running, finished, interrupted.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, the latest first (0: all).")] = 20,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """The runs, the latest first: when, what was asked, how far each got."""
    from rich.table import Table

    from poise.store import repo
    from poise.workflow.documents import run_json

    engine = _engine(database_url)
    with engine.connect() as connection:
        found = repo.rebalance_runs(connection, status=status, limit=limit)
    if as_json:
        _print_json([run_json(r) for r in found])
        return
    table = Table(title=f"rebalance runs ({len(found)})")
    for column in ("run", "status", "method", "as of", "started", "done", "failed"):
        table.add_column(
            column, justify="right" if column in ("done", "failed") else "left", no_wrap=True
        )
    for r in found:
        table.add_row(
            r.run_id,
            r.status,
            r.method,
            f"{r.as_of:%Y-%m-%d}",
            f"{r.started_at:%Y-%m-%d %H:%M}",
            f"{r.done:,}",
            f"[red]{r.failed:,}[/red]" if r.failed else "0",
        )
    out.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """One run: what was asked, its summary, and each household that failed, with why."""
    from poise.store import repo
    from poise.workflow.documents import run_json

    engine = _engine(database_url)
    with engine.connect() as connection:
        run = repo.rebalance_run(connection, run_id=run_id)
        failed = repo.run_households(connection, run_id=run_id, status="failed")
    if as_json:
        _print_json(
            {
                **run_json(run),
                "failures": [{"household_id": h.household_id, "reason": h.reason} for h in failed],
            }
        )
        return
    finished = f", finished {run.finished_at:%Y-%m-%d %H:%M} UTC" if run.finished_at else ""
    out.print(
        f"[bold]{run.run_id}[/bold]  {run.status}; {run.method}, prices as of"
        f" {run.as_of:%Y-%m-%d}; started {run.started_at:%Y-%m-%d %H:%M} UTC{finished}"
    )
    out.print(f"asked: {run.selection}; options {run.options}")
    out.print(f"households done {run.done:,}, failed {run.failed:,}")
    for key, value in (run.summary or {}).items():
        if key != "failures":
            out.print(f"  {key.replace('_', ' ')}: {value}")
    for h in failed:
        out.print(f"[red]failed:[/red] {h.household_id}: {h.reason}")
    if run.status != "finished" or failed:
        out.print(f"finish it with: poise rebalance --resume {run.run_id}")
