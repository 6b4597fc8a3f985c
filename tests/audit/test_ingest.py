"""Loading files appends to the audit ledger: one ``ingest.file`` entry a file loaded,
in the file's own transaction — its id in the history as the subject, the hash of its
digest and counts as the data, who loaded it as the actor; a refused file, or a load
that fails, leaves no entry."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.firm_files import write_firm

from poise.audit import ledger
from poise.audit.canonical import data_hash
from poise.audit.verify import verify
from poise.store import tables as t
from poise.workflow import ingest

TODAY = date(2026, 12, 6)


def test_ingest_when_files_load_then_each_is_one_ledger_entry_in_its_own_transaction(
    engine: sa.Engine, tmp_path: Path
) -> None:
    paths = write_firm(tmp_path / "firm")
    bad = tmp_path / "notes.csv"
    bad.write_text("what,ever\n1,2\n")
    reports = ingest.ingest_paths(engine, [*paths, bad], today=TODAY, actor="u-ops")
    loaded = [r for r in reports if not r.refused and not r.failed]
    assert len(loaded) == len(paths)
    with engine.connect() as connection:
        found = list(ledger.entries(connection))
        files = connection.execute(sa.select(t.ingest_files).order_by(t.ingest_files.c.id)).all()
        assert verify(connection, public=None).ok
    assert [e.action for e in found] == ["ingest.file"] * len(paths)
    assert {e.actor for e in found} == {"u-ops"}
    assert [e.subject for e in found] == [str(f.id) for f in files]
    for entry, row, report in zip(found, files, loaded, strict=True):
        assert entry.at == row.loaded_at
        assert entry.data_hash == data_hash(
            {
                "file_id": row.id,
                "sha256": row.sha256,
                "name": row.name,
                "kind": row.kind,
                "read": report.read,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "quarantined": report.quarantined,
                "wash_sale_lots": report.wash_sale_lots,
            }
        )


def test_ingest_when_a_load_fails_then_its_entry_is_rolled_back_with_it(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_firm(tmp_path / "firm")
    ingest.ingest_paths(engine, paths, today=TODAY)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the disk filled")

    monkeypatch.setattr(ingest.repo, "store_quarantine", broken)
    reports = ingest.ingest_paths(engine, paths[:1], today=TODAY)
    assert reports[0].failed
    with engine.connect() as connection:
        assert ledger.size(connection) == len(paths)
        assert {e.actor for e in ledger.entries(connection)} == {"system"}
