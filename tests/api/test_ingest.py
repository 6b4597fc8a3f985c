"""Loading files through the API: the very load ``poise ingest`` makes, and its history.

A demo firm's files (``poise.demo``: its securities, models, households and accounts
already loaded) and its lots, with two rows no custodian should send — a security no
one has loaded and a basis that is not a number. Operations uploads them: the good rows
load, the two bad ones are quarantined with their reasons, and the answer is the
document ``poise ingest --json`` prints for the same file. The same file again changes
nothing. Who may load and who may read the history; an upload too large for the
service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import add_people
from tests.processes import run_poise

from poise.api.app import API_PREFIX, create_app
from poise.api.routes.ingest import KINDS
from poise.audit import ledger
from poise.demo import generate_firm, write_firm
from poise.domain.users import Role
from poise.ingest.formats import FORMATS
from poise.settings import Settings
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade
from poise.workflow.ingest import ingest_paths, upload_name

PEOPLE: dict[str, tuple[Role, dict[str, Any]]] = {
    "ops": (Role.OPERATIONS, {}),
    "admin": (Role.ADMIN, {}),
    "compliance": (Role.COMPLIANCE, {}),
    "adviser": (Role.ADVISER, {"households": ["H0001"]}),
    "client": (Role.CLIENT, {"household_id": "H0001"}),
}
FIRST = ("securities", "models", "households", "accounts")  # loaded before each test
BAD_ROWS = (  # appended to the demo's lots: lines its last line + 1 and + 2
    "{account},L99001,AAPX,10,1500.00,2020-01-02",
    '{account},L99002,AAPL,10,"1,000",2020-01-02',
)


@dataclass(frozen=True)
class Firm:
    engine: sa.Engine
    client: TestClient
    tokens: dict[str, str]
    files: dict[str, Path]  # kind → the demo's file of it
    lots: Path  # the demo's lots and two bad rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("demo")
    return {p.stem: p for p in write_firm(generate_firm(households=3), folder)}


def _lots_with_bad_rows(demo: dict[str, Path], folder: Path) -> Path:
    text = demo["lots"].read_text()
    account = text.splitlines()[1].split(",")[0]
    path = folder / "lots.csv"
    path.write_text(text + "".join(row.format(account=account) + "\n" for row in BAD_ROWS))
    return path


def _app(engine: sa.Engine, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(**settings), engine=engine),
                      raise_server_exceptions=False)  # fmt: skip


@pytest.fixture
def firm(tmp_path: Path, demo: dict[str, Path]) -> Iterator[Firm]:
    engine = make_engine(f"sqlite:///{tmp_path / 'poise.db'}")
    upgrade(engine)
    ingest_paths(engine, [demo[k] for k in FIRST], today=datetime.now(UTC).date())
    tokens = add_people(engine, PEOPLE)
    with _app(engine) as client:
        yield Firm(engine, client, tokens, demo, _lots_with_bad_rows(demo, tmp_path))
    engine.dispose()


def auth(firm: Firm, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {firm.tokens[who]}"}


def upload(firm: Firm, who: str | None, *paths: Path, query: str = "") -> Any:
    headers = {} if who is None else auth(firm, who)
    sent = [("files", (p.name, p.read_bytes(), "text/csv")) for p in paths]
    return firm.client.post(f"{API_PREFIX}/ingest{query}", headers=headers, files=sent)


def quarantine_rows(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        found = connection.execute(sa.select(sa.func.count()).select_from(t.quarantine)).scalar()
    return int(found or 0)


def test_upload_when_operations_sends_lots_with_bad_rows_then_they_load_as_poise_ingest_loads_them(
    firm: Firm, tmp_path: Path
) -> None:
    answer = upload(firm, "ops", firm.lots)
    assert answer.status_code == 201, answer.text
    (report,) = answer.json()
    read = len(firm.lots.read_text().splitlines()) - 1
    last = read + 1  # the header is line 1
    assert report["path"] == "lots.csv"  # the name it was sent with, not where it was kept
    assert report["kind"] == "lots"
    assert (report["read"], report["loaded"], report["quarantined"]) == (read, read - 2, 2)
    assert report["rejects"] == [
        {"line": last - 1, "reason": "security_id: unknown security 'AAPX'"},
        {"line": last, "reason": "cost_basis '1,000' is not a number"},
    ]
    # The command, on a store as this one was, prints the same document.
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    made = run_poise("ingest", *(str(firm.files[k]) for k in FIRST), "--json",
                     database_url=url, cwd=tmp_path)  # fmt: skip
    assert made.code == 0, made.stderr
    printed = run_poise("ingest", str(firm.lots), "--json", database_url=url, cwd=tmp_path)
    (cli,) = json.loads(printed.stdout)
    assert {**cli, "path": "lots.csv"} == report


def test_history_when_a_file_left_rows_in_quarantine_then_it_lists_the_file_and_its_rows(
    firm: Firm,
) -> None:
    upload(firm, "ops", firm.lots)
    history = firm.client.get(f"{API_PREFIX}/ingest/files", headers=auth(firm, "ops")).json()
    assert history["total"] == len(FIRST) + 1
    newest = history["items"][0]  # the latest load first
    assert (newest["name"], newest["kind"], newest["quarantined"]) == ("lots.csv", "lots", 2)
    lots_only = firm.client.get(f"{API_PREFIX}/ingest/files?kind=lots", headers=auth(firm, "ops"))
    assert [f["file_id"] for f in lots_only.json()["items"]] == [newest["file_id"]]
    one = firm.client.get(
        f"{API_PREFIX}/ingest/files/{newest['file_id']}", headers=auth(firm, "compliance")
    ).json()
    assert one["sha256"] == newest["sha256"]
    reasons = [(q["line"], q["reason"]) for q in one["quarantine"]]
    assert [r for _, r in reasons] == [
        "security_id: unknown security 'AAPX'", "cost_basis '1,000' is not a number"
    ]  # fmt: skip
    assert one["quarantine"][0]["raw"].split(",")[1:3] == ["L99001", "AAPX"]


def test_upload_when_the_same_file_is_sent_twice_then_nothing_is_loaded_or_quarantined_twice(
    firm: Firm,
) -> None:
    first = upload(firm, "ops", firm.lots).json()[0]
    again = upload(firm, "ops", firm.lots).json()[0]
    assert again["loaded"] == 0
    assert again["unchanged"] == first["loaded"]
    assert again["rejects"] == first["rejects"]  # said again, kept once
    assert quarantine_rows(firm.engine) == 2
    history = firm.client.get(f"{API_PREFIX}/ingest/files?kind=lots", headers=auth(firm, "ops"))
    loads = history.json()["items"]
    assert [f["loaded"] for f in loads] == [0, first["loaded"]]  # two loads, one digest
    assert loads[0]["sha256"] == loads[1]["sha256"]
    second = firm.client.get(
        f"{API_PREFIX}/ingest/files/{loads[0]['file_id']}", headers=auth(firm, "ops")
    )
    assert len(second.json()["quarantine"]) == 2


def test_upload_when_files_come_together_then_in_dependency_order_and_a_refused_one_said(
    firm: Firm, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.csv"
    notes.write_text("colour,size\nred,3\n")
    answer = upload(firm, "admin", firm.files["transactions"], notes, firm.files["clients"])
    assert answer.status_code == 201, answer.text
    reports = answer.json()
    assert [r["path"] for r in reports] == ["clients.csv", "transactions.csv", "notes.csv"]
    assert reports[2]["refused"].startswith("notes.csv: the columns match no poise format")
    assert (reports[2]["kind"], reports[2]["read"]) == ("", 0)
    assert reports[1]["failed"] is None
    assert reports[1]["loaded"] > 0


def test_upload_when_the_kind_is_given_then_the_file_is_read_as_it_whatever_its_name(
    firm: Firm, tmp_path: Path
) -> None:
    sent = tmp_path / "custodian export (1).txt"
    sent.write_bytes(firm.files["clients"].read_bytes())
    (report,) = upload(firm, "ops", sent, query="?kind=clients").json()
    assert (report["path"], report["kind"], report["refused"]) == (sent.name, "clients", None)
    wrong = upload(firm, "ops", sent, query="?kind=colours")
    assert wrong.status_code == 422


def test_upload_when_the_name_holds_folders_then_only_its_last_part_is_kept() -> None:
    assert upload_name("../../etc/households.csv") == "households.csv"
    assert upload_name("C:\\exports\\lots.csv") == "lots.csv"
    assert upload_name("..") == upload_name("") == upload_name(None) == "upload"
    assert upload_name("lots\x00.csv") == "lots.csv"
    assert len(upload_name("é" * 300).encode()) <= 200


def test_upload_when_no_file_is_sent_then_422(firm: Firm) -> None:
    answer = firm.client.post(
        f"{API_PREFIX}/ingest", headers=auth(firm, "ops"), data={"kind": "lots"},
        files=[("other", ("x.csv", b"a,b\n1,2\n", "text/csv"))],
    )  # fmt: skip
    assert answer.status_code == 422
    assert "files" in answer.json()["detail"]


@pytest.mark.parametrize("who", ["adviser", "client", "compliance"])
def test_upload_when_the_role_does_not_load_files_then_403_and_nothing_loaded(
    firm: Firm, who: str
) -> None:
    answer = upload(firm, who, firm.lots)
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert quarantine_rows(firm.engine) == 0


@pytest.mark.parametrize("who", ["adviser", "client"])
def test_history_when_the_role_is_not_firm_wide_then_403_for_the_list_and_404_for_one(
    firm: Firm, who: str
) -> None:
    upload(firm, "ops", firm.lots)
    ops = firm.client.get(f"{API_PREFIX}/ingest/files", headers=auth(firm, "ops")).json()
    file_id = ops["items"][0]["file_id"]
    listed = firm.client.get(f"{API_PREFIX}/ingest/files", headers=auth(firm, who))
    assert listed.status_code == 403
    one = firm.client.get(f"{API_PREFIX}/ingest/files/{file_id}", headers=auth(firm, who))
    assert one.status_code == 404
    assert one.json()["detail"] == f"no file {file_id}"  # as for one that does not exist
    assert "AAPX" not in one.text


def test_ingest_when_no_credentials_then_401(firm: Firm) -> None:
    assert upload(firm, None, firm.lots).status_code == 401
    assert firm.client.get(f"{API_PREFIX}/ingest/files").status_code == 401
    assert firm.client.get(f"{API_PREFIX}/ingest/files/1").status_code == 401
    assert quarantine_rows(firm.engine) == 0


@pytest.mark.parametrize("file_id", ["0", "999", "-1", "abc", "1e3", str(2**40), "١"])
def test_history_when_the_file_id_is_no_load_then_404(firm: Firm, file_id: str) -> None:
    answer = firm.client.get(f"{API_PREFIX}/ingest/files/{file_id}", headers=auth(firm, "ops"))
    assert answer.status_code == 404, answer.text


def test_upload_when_larger_than_the_service_takes_then_413_and_nothing_read(
    firm: Firm,
) -> None:
    big = b"security_id,as_of,price,source\n" + b"AAPL,2022-12-28,126.04,close\n" * 40_000
    assert len(big) > 1024 * 1024
    with _app(firm.engine, upload_mb=1) as small:
        said = small.post(
            f"{API_PREFIX}/ingest", headers=auth(firm, "ops"),
            files=[("files", ("prices.csv", big, "text/csv"))],
        )  # fmt: skip
        assert said.status_code == 413, said.text
        problem = said.json()
        assert problem["type"].endswith("/toolarge")
        assert "larger than 1 MB" in problem["detail"]
        assert "POISE_UPLOAD_MB" in problem["detail"]
        # Sent in chunks, with no length said: refused once it passes the bound.
        boundary = "poise-test-boundary"
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="prices.csv"\r\nContent-Type: text/csv\r\n\r\n').encode()  # fmt: skip

        def chunks() -> Iterator[bytes]:
            yield head
            for start in range(0, len(big), 65536):
                yield big[start : start + 65536]
            yield f"\r\n--{boundary}--\r\n".encode()

        streamed = small.post(
            f"{API_PREFIX}/ingest", content=chunks(),
            headers={**auth(firm, "ops"),
                     "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )  # fmt: skip
        assert streamed.status_code == 413, streamed.text
    history = firm.client.get(f"{API_PREFIX}/ingest/files?kind=prices", headers=auth(firm, "ops"))
    assert history.json()["total"] == 0


def test_kinds_when_listed_then_every_format_poise_reads() -> None:
    assert tuple(FORMATS) == KINDS


def test_upload_when_retried_with_its_idempotency_key_then_answered_as_the_first_time(
    firm: Firm,
) -> None:
    key = {"Idempotency-Key": "lots-2025-12-31"}
    sent = [("files", ("lots.csv", firm.lots.read_bytes(), "text/csv"))]
    url = f"{API_PREFIX}/ingest"
    first = firm.client.post(url, headers={**auth(firm, "ops"), **key}, files=sent)
    again = firm.client.post(url, headers={**auth(firm, "ops"), **key}, files=sent)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()  # the first load's report, loaded 1,000-odd rows
    history = firm.client.get(f"{API_PREFIX}/ingest/files?kind=lots", headers=auth(firm, "ops"))
    assert history.json()["total"] == 1  # loaded once: the retry was not a second load
    other = [("files", ("lots.csv", firm.files["lots"].read_bytes(), "text/csv"))]
    reused = firm.client.post(url, headers={**auth(firm, "ops"), **key}, files=other)
    assert reused.status_code == 422  # the same key for other files


def test_upload_when_operations_loads_a_file_then_the_audit_ledger_names_them_and_the_file(
    firm: Firm,
) -> None:
    answer = upload(firm, "ops", firm.lots)
    assert answer.status_code == 201, answer.text
    history = firm.client.get(f"{API_PREFIX}/ingest/files?kind=lots", headers=auth(firm, "ops"))
    (loaded,) = history.json()["items"]
    with firm.engine.connect() as connection:
        ops = connection.execute(
            sa.select(t.users.c.user_id).where(t.users.c.username == "ops")
        ).scalar_one()
        entries = list(ledger.entries(connection))
    assert [e.actor for e in entries] == ["system"] * len(FIRST) + [ops]  # the first by hand
    assert (entries[-1].action, entries[-1].subject) == ("ingest.file", str(loaded["file_id"]))
