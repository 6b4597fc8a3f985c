"""``poise audit`` as a compliance officer runs it, and the stand-alone verifier as a
client or an examiner runs it: copied out alone into an empty folder and run with
``python -I`` (no poise, no database), on the proofs the commands wrote."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from poise.audit import ledger, verifier
from poise.cli import app
from poise.domain.errors import PoiseError
from poise.store import tables as t

runner = CliRunner()
VERIFIER = Path(verifier.__file__)
T0 = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def poise(*args: str, database_url: str | None = None) -> tuple[int, str, str]:
    tail = ("--database-url", database_url) if database_url else ()
    result = runner.invoke(app, [*args, *tail])
    if isinstance(result.exception, PoiseError):  # as poise.cli.main reports it
        return result.exception.exit_code, result.stdout, f"error: {result.exception}\n"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _append(engine: sa.Engine, start: int, count: int) -> None:
    with engine.execution_options(writes=True).begin() as connection:
        for i in range(start, start + count):
            ledger.append(
                connection,
                actor="system",
                action="ingest.file" if i % 2 else "proposal.made",
                subject=f"F{i}",
                data={"rows": i, "client": "Ana Díaz"},
                reason="" if i % 3 else "loaded by the nightly job",
                at=T0 + timedelta(hours=i),
            )


def check(what: str, proof: Path, key: Path, folder: Path) -> subprocess.CompletedProcess[str]:
    """The verifier, alone in ``folder``, run isolated from poise and the environment."""
    copy = folder / "verifier.py"
    if not copy.exists():
        shutil.copy(VERIFIER, copy)
    return subprocess.run(
        [sys.executable, "-I", str(copy), what, str(proof), str(key)],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_verifier_when_read_then_it_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFIER.read_text(encoding="utf-8"))
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported - sys.stdlib_module_names == {"cryptography"}


@pytest.mark.slow
def test_audit_when_a_ledger_is_signed_proved_and_exported_then_the_verifier_alone_holds_it(
    engine: sa.Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "config" / "audit-key.pem"
    monkeypatch.setenv("POISE_AUDIT_KEY", str(key))
    code, text, _ = poise("audit", "verify", database_url=database_url)
    assert code == 0, text  # an empty ledger, no key yet: verified, signatures unchecked
    code, pem, _ = poise("audit", "key")
    assert code == 0
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert key.stat().st_mode & 0o777 == 0o600
    assert poise("audit", "key")[1] == pem  # never made twice
    public = tmp_path / "firm.pub.pem"
    public.write_text(pem)

    _append(engine, 0, 11)
    code, text, _ = poise("audit", "checkpoint", "--json", database_url=database_url)
    assert code == 0, text
    assert json.loads(text)["tree_size"] == 11
    _append(engine, 11, 6)
    assert poise("audit", "checkpoint", database_url=database_url)[0] == 0

    code, text, _ = poise("audit", "verify", "--json", database_url=database_url)
    assert code == 0, text
    report = json.loads(text)
    assert (report["verified"], report["entries"], report["checkpoints"]) == (True, 17, 2)
    assert report["signatures_checked"] is True

    code, text, _ = poise(
        "audit", "show", "--action", "ingest.*", "--json", database_url=database_url
    )
    shown = json.loads(text)
    assert [e["seq"] for e in shown] == [1, 3, 5, 7, 9, 11, 13, 15]
    assert all("Ana" not in json.dumps(e) for e in shown)
    code, text, _ = poise("audit", "show", "--subject", "F4", database_url=database_url)
    assert code == 0
    assert "F4" in text

    folder = tmp_path / "examiner"
    folder.mkdir()
    proof = folder / "proof.json"
    assert (
        poise(
            "audit",
            "prove",
            "4",
            "--checkpoint",
            "1",
            "--out",
            str(proof),
            database_url=database_url,
        )[0]
        == 0
    )
    run = check("inclusion", proof, public, folder)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.endswith("verified\n")

    changed = json.loads(proof.read_text())
    changed["entry"]["reason"] = "approved by both partners"
    changed["leaf_hash"] = None
    forged = folder / "forged.json"
    forged.write_text(json.dumps(changed))
    run = check("inclusion", forged, public, folder)
    assert run.returncode == 1
    assert run.stdout.startswith("FAILED: entry 4 is not in the signed tree")

    between = folder / "consistency.json"
    assert (
        poise("audit", "consistency", "1", "2", "--out", str(between), database_url=database_url)[0]
        == 0
    )
    run = check("consistency", between, public, folder)
    assert run.returncode == 0, run.stdout + run.stderr
    swapped = json.loads(between.read_text())
    swapped["old"], swapped["new"] = swapped["new"], swapped["old"]
    (folder / "swapped.json").write_text(json.dumps(swapped))
    assert check("consistency", folder / "swapped.json", public, folder).returncode == 1

    exported = folder / "export.json"
    code, text, _ = poise(
        "audit",
        "export",
        str(exported),
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-01T12:00",
        "--json",
        database_url=database_url,
    )
    assert code == 0, text
    assert json.loads(text)["entries"] == 3
    run = check("export", exported, public, folder)
    assert run.returncode == 0, run.stdout + run.stderr

    other = tmp_path / "other.pem"
    assert poise("audit", "key", "--key", str(other))[0] == 0
    other_public = folder / "other.pub.pem"
    other_public.write_text(poise("audit", "key", "--key", str(other))[1])
    run = check("inclusion", proof, other_public, folder)
    assert run.returncode == 1
    assert "another key" in run.stdout

    # an attacker edits entry 6 in the database, past the triggers
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("DROP TRIGGER audit_entries_append_only ON audit_entries")
        else:
            connection.exec_driver_sql("DROP TRIGGER audit_entries_no_update")
        connection.execute(
            sa.update(t.audit_entries).where(t.audit_entries.c.seq == 6).values(actor="u-eve")
        )
    code, _, errors = poise("audit", "verify", database_url=database_url)
    assert code == 8
    assert errors.strip().splitlines() == [
        "error: entry 6 was edited: its fields no longer give the leaf hash it was written"
        " with (or another entry was moved into its place)"
    ]
    code, _, errors = poise("audit", "checkpoint", database_url=database_url)
    assert code == 8
    assert "not signed: entry 6 was edited" in errors


def test_audit_when_there_is_no_key_then_checkpoint_says_how_to_make_one(
    engine: sa.Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("POISE_AUDIT_KEY", raising=False)
    code, _, errors = poise("audit", "checkpoint", database_url=database_url)
    assert code == 2
    where = tmp_path / "config" / "poise" / "audit-key.pem"
    assert errors == (
        f"error: there is no audit key at {where}: make one with `poise audit key`,"
        " or point POISE_AUDIT_KEY at the firm's\n"
    )
    code, _, errors = poise("audit", "prove", "0", database_url=database_url)
    assert code == 5
    assert "no checkpoint yet" in errors
    assert poise("audit", "key")[0] == 0
    assert where.exists()
    assert where.parent.stat().st_mode & 0o777 == 0o700
