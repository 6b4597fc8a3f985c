"""Firm-wide runs the server runs in the background: one at a time in a server process,
on a thread of its own, planning on the process pool or Dask cluster the settings name,
as ``poise rebalance --all`` does.

A run is kept in the store before ``POST /api/v1/runs`` answers, and keeps each
household as it finishes, so its progress is read from the store by anyone —
``GET /api/v1/runs/{run_id}``, the run's page, the ``run`` events of
``GET /api/v1/events`` — from any server process. When the server stops, a run in
progress keeps what it has planned and ends ``interrupted``: ``POST /api/v1/runs``
with ``{"resume": run_id}`` (or ``poise rebalance --resume``) goes on with it.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from poise.domain.errors import ConflictError
from poise.store import repo
from poise.store.repo.runs import INTERRUPTED

if TYPE_CHECKING:
    import sqlalchemy as sa
    from fastapi import FastAPI

    from poise.settings import Settings
    from poise.workflow.run import RunOptions, Selection

__all__ = ["Jobs", "jobs_of"]

log = logging.getLogger("poise.api.jobs")

STARTING = 120.0  # seconds a run may take to be kept (its selection read) before giving up
STOPPING = 20.0  # seconds a run is given to keep what it has when the server stops


class Jobs:
    """The background runs of one server process."""

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.run_id: str | None = None  # the run in progress, or the last one

    def start(
        self,
        *,
        as_of: datetime,
        selection: Selection | None,
        options: RunOptions | None,
        resume: str | None,
        prepared_by: str | None = None,
    ) -> str:
        """Start a run (or resume one) on a thread; its id once it is kept. A run already
        in progress here is a :class:`ConflictError`; a selection or a run to resume that
        cannot be read, the error that says why. ``prepared_by``: the user who started
        it, who prepared its proposals."""
        from poise.workflow.run import rebalance_run  # noqa: PLC0415 - the engine loads late

        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise ConflictError(
                    f"run {self.run_id} is in progress in this server: follow it at"
                    f" /api/v1/runs/{self.run_id}, and start another when it ends"
                )
            if self._stop.is_set():
                raise ConflictError("the server is stopping: start the run elsewhere")
            begun = threading.Event()
            told: dict[str, str] = {}
            failed: list[BaseException] = []

            def started(run_id: str) -> None:
                told["run_id"] = run_id
                begun.set()

            def work() -> None:
                try:
                    rebalance_run(
                        self._engine, as_of=as_of, selection=selection, options=options,
                        resume=resume, settings=self._settings, started=started,
                        stop=self._stop, prepared_by=prepared_by,
                    )  # fmt: skip
                except BaseException as error:
                    failed.append(error)
                    if "run_id" in told:
                        self._interrupted(told["run_id"], error)
                    begun.set()

            thread = threading.Thread(target=work, name="poise-run", daemon=True)
            thread.start()
            begun.wait(STARTING)
            if "run_id" not in told:
                if failed:
                    raise failed[0]
                raise ConflictError("the run did not start in time: see the server's log")
            self._thread, self.run_id = thread, told["run_id"]
            return self.run_id

    def running(self) -> str | None:
        """The run in progress in this process, if one is."""
        thread = self._thread
        return self.run_id if thread is not None and thread.is_alive() else None

    def _interrupted(self, run_id: str, error: BaseException) -> None:
        """A run that broke off keeps its households done, and says why it stopped."""
        log.error("run %s stopped: %r", run_id, error, exc_info=error)
        try:
            with self._engine.execution_options(writes=True).begin() as connection:
                repo.finish_rebalance_run(
                    connection,
                    run_id=run_id,
                    summary={"error": f"{type(error).__name__}: {error}"},
                    finished_at=datetime.now(UTC),
                    status=INTERRUPTED,
                )
        except Exception:
            log.exception("run %s could not be marked interrupted", run_id)

    def close(self) -> None:
        """Stop: a run in progress keeps what it has and ends interrupted."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive():
            log.info("stopping run %s", self.run_id)
            thread.join(STOPPING)


def jobs_of(app: FastAPI) -> Jobs:
    """The application's background runs."""
    jobs: Jobs = app.state.jobs
    return jobs
