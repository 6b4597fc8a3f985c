"""The audit ledger through the API, on SQLite and PostgreSQL: the ledger of
``tests.audit.ledger_firm`` — the small firm's files loaded, then a day of decisions
recorded, eight of which a checkpoint signed with the firm's key, and four after it.

The routes answer what the commands print with ``--json`` (one function makes both):
the entries searched and paged, newest first; an entry's inclusion proof, which the
stand-alone verifier accepts with the firm's public key — or, for an entry no
checkpoint holds yet, its proof in the ledger as it stands; the checkpoints; and the
ledger verified whole. The firm-wide roles read it; an adviser and a client may not.
An entry edited in the database, past its triggers, is named by verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from tests.api.reads_firm import add_people
from tests.audit.ledger_firm import build
from tests.audit.tampering import edit_entry
from tests.conftest import postgres_schema_url
from typer.testing import CliRunner

from poise.api.app import API_PREFIX, create_app
from poise.audit import ledger, merkle, verifier
from poise.audit.keys import load_private_key
from poise.cli import app as cli
from poise.domain.users import Role
from poise.settings import Settings

PEOPLE: dict[str, tuple[Role, dict[str, Any]]] = {
    "olu": (Role.OPERATIONS, {}),
    "cora": (Role.COMPLIANCE, {}),
    "pam": (Role.PORTFOLIO_MANAGER, {}),
    "root": (Role.ADMIN, {}),
    "ana": (Role.ADVISER, {"households": ["H1"]}),
    "garcia": (Role.CLIENT, {"household_id": "H1"}),
}
FIRM_WIDE = ("olu", "cora", "pam", "root")


@dataclass(frozen=True)
class Ledger:
    engine: sa.Engine
    key: Path
    tokens: dict[str, str]
    client: TestClient
    loaded: int  # entries of the files loaded, before the decisions
    signed: int  # entries the checkpoint holds

    def get(self, path: str, who: str = "cora", **headers: str) -> Any:
        auth = {"Authorization": f"Bearer {self.tokens[who]}", **headers}
        return self.client.get(f"{API_PREFIX}{path}", headers=auth)

    def json(self, path: str, who: str = "cora") -> Any:
        answer = self.get(path, who)
        assert answer.status_code == 200, (path, who, answer.status_code, answer.text[:300])
        return answer.json()

    def command(self, *args: str, exit_code: int = 0) -> Any:
        """What ``poise audit <args>`` prints, on this store, with this firm's key."""
        url = self.engine.url.render_as_string(hide_password=False)
        result = CliRunner().invoke(
            cli, ["audit", *args, "--database-url", url], env={"POISE_AUDIT_KEY": str(self.key)}
        )
        code = getattr(result.exception, "exit_code", result.exit_code)
        assert code == exit_code, result.output
        return json.loads(result.stdout)


def _open(folder: Path, url: str | None) -> Iterator[Ledger]:
    built = build(folder, url)
    tokens = add_people(built.engine, PEOPLE)
    app = create_app(Settings(audit_key=built.key), engine=built.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Ledger(built.engine, built.key, tokens, client, built.loaded, built.signed)
    built.engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def kept(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ledger]:
    """The ledger on each database, read by every test of the module but the last."""
    urls = iter([None]) if request.param == "sqlite" else postgres_schema_url()
    yield from _open(tmp_path_factory.mktemp("audit"), next(urls))
    next(urls, None)


@pytest.fixture(params=["sqlite", "postgres"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """A ledger of its own, for a test that tampers with it."""
    urls = iter([None]) if request.param == "sqlite" else postgres_schema_url()
    yield from _open(tmp_path, next(urls))
    next(urls, None)


# ── the entries ──────────────────────────────────────────────────────────────


def test_entries_when_listed_then_newest_first_paged_as_the_command_shows_them(
    kept: Ledger,
) -> None:
    total = kept.loaded + 12
    first = kept.json("/audit/entries?limit=5")
    assert (first["total"], first["limit"], first["offset"]) == (total, 5, 0)
    assert [e["seq"] for e in first["items"]] == list(range(total - 1, total - 6, -1))
    rest = kept.json("/audit/entries?limit=500&offset=5")
    assert [e["seq"] for e in rest["items"]] == list(range(total - 6, -1, -1))
    shown = kept.command("show", "--limit", "0", "--json")
    assert [*first["items"], *rest["items"]] == list(reversed(shown))
    newest = first["items"][0]
    assert set(newest) == {"seq", "at", "actor", "action", "subject", "reason", "data_hash",
                           "corrects", "prev_hash", "leaf_hash"}  # fmt: skip
    assert (newest["actor"], newest["action"]) == ("system", "proposal.expire")
    assert newest["at"] == "2026-12-07T20:00:00.000000Z"
    assert "1250.00" not in json.dumps(first)  # the data only as its hash
    pam = kept.json("/audit/entries?actor=u-pam")["items"]
    assert pam == list(reversed(kept.command("show", "--actor", "u-pam", "--json")))


@pytest.mark.parametrize(
    ("query", "decisions"),
    [
        ("actor=u-pam", [3, 4, 9, 10]),
        ("action=proposal.approve", [3, 4, 9, 10]),
        ("action=proposal.a*", [2, 3, 4, 8, 9, 10]),
        ("subject=10000003/2026-12-07/bands", [1, 4, 7, 10]),
        ("from=2026-12-07T18:00:00Z&action=proposal.*", [9, 10, 11]),
        ("to=2026-12-07T10:30:00%2B00:00&action=proposal.*", [0, 1]),
        ("actor=u-ana&from=2026-12-07T12:00:00", [6, 7]),
        ("from=2026-12-07&to=2026-12-07&action=proposal.*", list(range(12))),
        ("to=2026-12-06T23:59:59&action=proposal.*", []),
    ],
)
def test_entries_when_filtered_then_only_those_matching(
    kept: Ledger, query: str, decisions: list[int]
) -> None:
    """Who, what (a prefix with ``*``), about what, from and to (a date: that day). The
    files' loads are entries of the day the test runs, so the time filters are asked
    for decisions alone."""
    found = kept.json(f"/audit/entries?{query}")
    wanted = [kept.loaded + n for n in reversed(decisions)]
    assert [e["seq"] for e in found["items"]] == wanted
    assert found["total"] == len(wanted)


def test_entries_when_the_files_are_asked_for_then_the_loads_are_there(kept: Ledger) -> None:
    loads = kept.json("/audit/entries?action=ingest.file&actor=system")
    assert loads["total"] == kept.loaded
    assert {e["seq"] for e in loads["items"]} == set(range(kept.loaded))


@pytest.mark.parametrize("query", ["from=yesterday", "to=2026-13-01", "limit=0", "offset=-1"])
def test_entries_when_a_parameter_cannot_be_read_then_422(kept: Ledger, query: str) -> None:
    answer = kept.get(f"/audit/entries?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


# ── one entry, and its proof ─────────────────────────────────────────────────


def test_entry_when_a_checkpoint_holds_it_then_its_proof_is_the_commands_and_it_verifies(
    kept: Ledger,
) -> None:
    seq = kept.loaded + 3
    proof = kept.json(f"/audit/entries/{seq}")
    assert proof == kept.command("prove", str(seq))
    assert proof["entry"]["seq"] == proof["index"] == seq
    assert proof["checkpoint"]["number"] == 1
    assert proof["tree_size"] == proof["checkpoint"]["tree_size"] == kept.signed
    assert proof["root_hash"] == proof["checkpoint"]["root_hash"]
    public = load_private_key(kept.key).public_key()
    said = verifier.inclusion(proof, public)  # the stand-alone verifier, as an examiner runs it
    assert said[-1].startswith(f"entry {seq} (proposal.approve")


def test_entry_when_no_checkpoint_holds_it_yet_then_proved_in_the_ledger_as_it_stands(
    kept: Ledger,
) -> None:
    seq = kept.loaded + 10
    proof = kept.json(f"/audit/entries/{seq}")
    assert proof == kept.command("prove", str(seq), "--head")
    assert proof["checkpoint"] is None
    assert proof["tree_size"] == kept.loaded + 12
    assert proof["root_hash"] == kept.json("/audit/verify")["root_hash"]
    path = [bytes.fromhex(p) for p in proof["path"]]
    leaf = bytes.fromhex(proof["leaf_hash"])
    assert merkle.verify_inclusion(seq, proof["tree_size"], leaf, path,
                                   bytes.fromhex(proof["root_hash"]))  # fmt: skip
    refused = kept.get(f"/audit/entries/{seq}?checkpoint=1")
    assert refused.status_code == 404
    assert f"entry {seq} is not in checkpoint 1" in refused.json()["detail"]


@pytest.mark.parametrize("seq", ["999", "abc", "-1", "1e3", str(2**63)])
def test_entry_when_there_is_no_such_entry_then_404(kept: Ledger, seq: str) -> None:
    answer = kept.get(f"/audit/entries/{seq}")
    assert answer.status_code == 404, answer.text
    assert answer.json()["detail"] == f"no audit entry {seq}"


def test_entry_when_the_etag_is_held_then_304(kept: Ledger) -> None:
    first = kept.get("/audit/entries/1")
    again = kept.get("/audit/entries/1", **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


# ── checkpoints, and verifying ───────────────────────────────────────────────


def test_checkpoints_when_listed_then_each_signed_head(kept: Ledger) -> None:
    points = kept.json("/audit/checkpoints")
    assert points["total"] == 1
    (point,) = points["items"]
    assert point == ledger.checkpoint_json(_checkpoint(kept.engine))
    assert (point["number"], point["tree_size"]) == (1, kept.signed)
    assert point["at"] == "2026-12-07T17:00:00.000000Z"


def _checkpoint(engine: sa.Engine) -> ledger.Checkpoint:
    with engine.connect() as connection:
        return ledger.find_checkpoint(connection)


def test_verify_when_nothing_was_changed_then_verified_with_the_signatures(kept: Ledger) -> None:
    checked = kept.json("/audit/verify")
    assert checked == kept.command("verify", "--json")
    assert checked["verified"] is True
    assert (checked["entries"], checked["checkpoints"]) == (kept.loaded + 12, 1)
    assert checked["signatures_checked"] is True
    assert checked["fault"] is None


def test_verify_when_the_server_holds_no_key_then_everything_but_the_signatures(
    kept: Ledger, tmp_path: Path
) -> None:
    app = create_app(Settings(audit_key=tmp_path / "none.pem"), engine=kept.engine)
    with TestClient(app) as client:
        checked = client.get(
            f"{API_PREFIX}/audit/verify",
            headers={"Authorization": f"Bearer {kept.tokens['olu']}"},
        ).json()
    assert (checked["verified"], checked["signatures_checked"]) == (True, False)


# ── who may read it ──────────────────────────────────────────────────────────


@pytest.mark.parametrize("who", FIRM_WIDE)
def test_ledger_when_read_by_a_firm_wide_role_then_answered(kept: Ledger, who: str) -> None:
    for path in ("/audit/entries", "/audit/entries/0", "/audit/checkpoints", "/audit/verify"):
        kept.json(path, who)


@pytest.mark.parametrize("who", ["ana", "garcia"])
def test_ledger_when_read_by_an_adviser_or_a_client_then_403_and_no_entry(
    kept: Ledger, who: str
) -> None:
    for path in ("/audit/entries", "/audit/checkpoints", "/audit/verify"):
        answer = kept.get(path, who)
        assert answer.status_code == 403, (path, answer.text)
        assert "10000001" not in answer.text
    one = kept.get("/audit/entries/0", who)
    assert one.status_code == 404
    assert one.json()["detail"] == "no audit entry 0"  # as for one that does not exist


# ── an attacker with the database ────────────────────────────────────────────


def test_verify_when_an_entry_was_edited_in_the_database_then_it_names_it(
    fresh: Ledger,
) -> None:
    seq = fresh.loaded + 2  # inside the checkpoint
    edit_entry(fresh.engine, seq=seq, reason="no reason at all")
    checked = fresh.json("/audit/verify")
    assert checked["verified"] is False
    assert checked["fault"]["seq"] == seq
    assert checked["fault"]["reason"].startswith(f"entry {seq} was edited")
    assert checked == fresh.command("verify", "--json", exit_code=8)
    proof = fresh.get(f"/audit/entries/{seq}")
    assert proof.status_code == 409
    assert proof.json()["detail"].startswith(f"entry {seq} was edited")
    shown = fresh.json("/audit/entries?subject=10000001/2026-12-07/bands&limit=500")
    assert "no reason at all" in json.dumps(shown)  # as it stands now: the edit is shown
