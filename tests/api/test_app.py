"""The service's frame: health and readiness, errors as problem details, a request id
on every response and log line — in process, and as ``poise serve`` under uvicorn."""

from __future__ import annotations

import gc
import json
import logging
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from anyio import to_thread
from fastapi import APIRouter
from fastapi.testclient import TestClient
from tests.processes import free_port, start_poise

from poise.api.app import API_PREFIX, create_app, serve_app
from poise.api.logs import JsonFormatter
from poise.domain.errors import NotFoundError
from poise.settings import Settings
from poise.store.engine import make_engine
from poise.store.migrate import head_revision, upgrade


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    app = create_app(Settings(), engine=engine)
    broken = APIRouter()

    @broken.get("/test/missing")
    def missing() -> None:
        raise NotFoundError("no household H9")

    @broken.get("/test/crash")
    def crash() -> None:
        raise RuntimeError("the secret is swordfish")

    app.include_router(broken, prefix=API_PREFIX)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_health_when_asked_then_ok_without_credentials(client: TestClient) -> None:
    answer = client.get(f"{API_PREFIX}/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_ready_when_the_store_is_current_then_ready(client: TestClient) -> None:
    answer = client.get(f"{API_PREFIX}/ready")
    assert answer.status_code == 200
    assert answer.json()["schema_revision"] == head_revision()


def test_ready_when_the_store_is_behind_then_503_and_what_to_run(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0009")
    with TestClient(create_app(Settings(), engine=engine)) as c:
        answer = c.get(f"{API_PREFIX}/ready")
    assert answer.status_code == 503
    assert answer.json()["status"] == "not ready"
    assert "poise db upgrade" in answer.json()["database"]


def test_problem_when_a_typed_error_is_raised_then_its_status_and_message(
    client: TestClient,
) -> None:
    answer = client.get(f"{API_PREFIX}/test/missing", headers={"X-Request-ID": "abc-123"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["detail"] == "no household H9"
    assert body["type"].endswith("/notfound")
    assert body["instance"] == "urn:poise:request:abc-123"
    assert answer.headers["x-request-id"] == "abc-123"


def test_problem_when_something_unexpected_breaks_then_500_without_the_exception(
    client: TestClient,
) -> None:
    answer = client.get(f"{API_PREFIX}/test/crash", headers={"X-Request-ID": "crash-7"})
    assert answer.status_code == 500
    assert "swordfish" not in answer.text
    assert answer.json()["detail"] == "an unexpected error; quote request crash-7 when reporting it"
    assert answer.json()["instance"] == "urn:poise:request:crash-7"


def test_problem_when_the_route_is_unknown_then_404_as_a_problem(client: TestClient) -> None:
    answer = client.get(f"{API_PREFIX}/nothing-here")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_request_id_when_the_callers_is_not_sane_then_a_new_one(client: TestClient) -> None:
    answer = client.get(f"{API_PREFIX}/health", headers={"X-Request-ID": "x" * 500})
    assert len(answer.headers["x-request-id"]) == 32


def test_log_line_when_formatted_then_one_json_object_with_the_fields() -> None:
    record = logging.LogRecord("poise.api", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    record.fields = {"status": 200}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /x"
    assert line["level"] == "info"
    assert line["status"] == 200
    assert line["request_id"] == "-"


def test_openapi_when_fetched_then_it_is_under_the_api_prefix(client: TestClient) -> None:
    document = client.get(f"{API_PREFIX}/openapi.json").json()
    assert document["info"]["title"] == "poise"
    assert f"{API_PREFIX}/health" in document["paths"]


def test_serve_when_run_then_uvicorn_answers_logs_json_and_stops_gracefully(
    database_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    port = free_port()
    server = start_poise("serve", "--port", str(port), database_url=database_url, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}{API_PREFIX}"
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(f"{base}/ready", headers={"X-Request-ID": "probe-1"})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        assert answer.status_code == 200
        assert answer.json()["status"] == "ready"
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    # uvicorn finishes, then ends by the signal it was sent, as a process told to stop
    # does (so a supervisor sees why it stopped).
    assert server.returncode in (0, -signal.SIGTERM)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "poise.api.access"]
    assert any(line["request_id"] == "probe-1" and line["status"] == 200 for line in access)
    assert any("shutdown complete" in line["message"].lower() for line in lines)


def test_serve_when_the_store_is_missing_then_refused_before_listening(tmp_path: Path) -> None:
    server = start_poise(
        "serve", "--port", str(free_port()),
        database_url=f"sqlite:///{tmp_path / 'none.db'}", cwd=tmp_path,
    )  # fmt: skip
    _, stderr = server.communicate(timeout=30)
    assert server.returncode == 6
    assert "no poise database" in stderr


def test_serve_app_when_made_then_what_lives_with_the_process_is_left_out_of_full_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    upgrade(make_engine(url))
    monkeypatch.setenv("POISE_DATABASE_URL", url)
    try:
        app = serve_app()
        assert gc.get_freeze_count() > 10_000  # the modules, the routes, their models
        assert f"{API_PREFIX}/health" in app.openapi()["paths"]
    finally:
        gc.unfreeze()  # this is a test process, not a server's


def test_app_when_started_then_its_routes_run_on_as_many_threads_as_set(
    engine: sa.Engine,
) -> None:
    async def tokens() -> float:
        return to_thread.current_default_thread_limiter().total_tokens

    with TestClient(create_app(Settings(web_threads=3), engine=engine)) as client:
        assert client.portal is not None
        assert client.portal.call(tokens) == 3
