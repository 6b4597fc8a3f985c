"""``poise audit``: the ledger every stage appends to — its key, its signed checkpoints,
verifying it whole, reading it, and the proofs and exports that let a client or an
examiner check it without the database (docs/audit.md)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from poise.cli.common import (
    DatabaseOption,
    JsonOption,
    _as_of,
    _engine,
    _print_json,
    _progress,
    app,
    command_group,
    err,
    out,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

__all__ = [
    "audit_checkpoint",
    "audit_consistency",
    "audit_export",
    "audit_key",
    "audit_prove",
    "audit_show",
    "audit_verify",
]

audit_app = command_group(
    "The audit ledger: verify it, read it, sign checkpoints, prove entries to examiners."
)
app.add_typer(audit_app, name="audit")

KeyOption = Annotated[
    Path | None,
    typer.Option(
        "--key",
        help="The firm's private key file (POISE_AUDIT_KEY; default: "
        "~/.config/poise/audit-key.pem).",
    ),
]
PublicKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        help="Check signatures with this public key (PEM) instead of the private key's.",
    ),
]
PublicKeysOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--public-key",
        help="Check signatures with this public key (PEM) instead of the private key's;"
        " repeat it for the firm's earlier keys.",
    ),
]


def _key_path(given: Path | None) -> Path:
    from poise.audit.keys import default_key_path
    from poise.settings import Settings

    return given or Settings().audit_key or default_key_path()


def _public(key: Path | None, public_key: Path | None, *, needed: bool) -> Ed25519PublicKey | None:
    """The public key signatures are checked with: the file given, else the private
    key's; ``None`` (with a warning) when neither is there and it is not ``needed``."""
    from poise.audit.keys import load_private_key, load_public_key, public_half
    from poise.domain.errors import ConfigError

    if public_key is not None:
        try:
            return load_public_key(public_key.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the public key {public_key}: {exc}") from None
    path = _key_path(key)
    if needed:
        return load_private_key(path).public_key()
    found = public_half(path)
    if found is None:
        err.print(
            f"[yellow]warning:[/yellow] no audit key at {path}: signatures not checked"
            " (give --public-key)"
        )
    return found


@contextmanager
def _bar(description: str, *, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    with _progress(disable=not enabled or not err.is_terminal) as progress:
        task = progress.add_task(description, total=None)

        def tick(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield tick


def _write(document: Any, destination: Path | None) -> None:
    from poise.workflow.documents import jsonable

    text = json.dumps(jsonable(document), indent=2, ensure_ascii=False) + "\n"
    if destination is None or str(destination) == "-":
        sys.stdout.write(text)
    else:
        destination.write_text(text, encoding="utf-8")


# ── the key and checkpoints ──────────────────────────────────────────────────


@audit_app.command("key")
def audit_key(
    key: KeyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make the firm's signing key if there is none (never over one), and print its
    public key (PEM) to give to clients and examiners."""
    from poise.audit.keys import key_id, load_private_key, make_key, public_pem

    path = _key_path(key)
    new = not path.exists()
    private = make_key(path) if new else load_private_key(path)
    public = private.public_key()
    if as_json:
        _print_json(
            {
                "path": str(path),
                "made": new,
                "key_id": key_id(public),
                "public_key": public_pem(public),
            }
        )
        return
    if new:
        err.print(f"made {path} (readable by you alone): keep it safe and out of the database")
    err.print(f"key id {key_id(public)}")
    sys.stdout.write(public_pem(public))


@audit_app.command("checkpoint")
def audit_checkpoint(
    key: KeyOption = None,
    earlier: Annotated[
        list[Path] | None,
        typer.Option(
            "--earlier-key",
            help="A public key (PEM) the firm signed with before this one (repeat for more).",
        ),
    ] = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Verify the ledger, then sign its head (size, root, time) and keep the checkpoint."""
    from poise.audit.keys import load_private_key
    from poise.audit.ledger import checkpoint_json
    from poise.audit.proofs import sign_checkpoint

    private = load_private_key(_key_path(key))
    before = [_public(key, given, needed=True) for given in earlier or []]
    engine = _engine(database_url)
    with (
        _bar("verifying before signing", enabled=not as_json) as tick,
        engine.execution_options(writes=True).begin() as connection,
    ):
        point = sign_checkpoint(
            connection,
            key=private,
            earlier_keys=[p for p in before if p is not None],
            progress=tick,
        )
    if as_json:
        _print_json(checkpoint_json(point))
        return
    out.print(
        f"checkpoint {point.number}: {point.tree_size:,} entries, root {point.root_hash},"
        f" signed {point.at:%Y-%m-%d %H:%M:%S} UTC by key {point.key_id[:16]}…"
    )


# ── verify ───────────────────────────────────────────────────────────────────


@audit_app.command("verify")
def audit_verify(
    key: KeyOption = None,
    public_key: PublicKeysOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute every leaf, the chain and the tree, check every checkpoint's root and
    signature, and name the first entry edited, deleted, inserted or reordered (exit 8)."""
    from poise.audit.ledger import LedgerError
    from poise.audit.verify import verified_json, verify

    if public_key:
        publics = [_public(key, given, needed=True) for given in public_key]
        public: list[Ed25519PublicKey] | Ed25519PublicKey | None = [
            p for p in publics if p is not None
        ]
    else:
        public = _public(key, None, needed=False)
    engine = _engine(database_url)
    with _bar("verifying the ledger", enabled=not as_json) as tick, engine.connect() as connection:
        checked = verify(connection, public=public, progress=tick)
    if as_json:
        _print_json(verified_json(checked))
    if checked.fault is not None:
        raise LedgerError(checked.fault.reason)
    if not as_json:
        signed = "signatures checked" if checked.signatures_checked else "signatures NOT checked"
        out.print(
            f"verified: {checked.entries:,} entries, {checked.checkpoints} checkpoints"
            f" ({signed}), root {checked.root_hash}"
        )


# ── reading ──────────────────────────────────────────────────────────────────


@audit_app.command("show")
def audit_show(
    start: Annotated[
        str | None, typer.Option("--from", help="From this time (ISO 8601; a date: its end).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Up to this time.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action (ingest.* for a prefix).")
    ] = None,
    subject: Annotated[str | None, typer.Option(help="Only entries about this id.")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only entries of this actor (a user's id, or system).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries (0: all).")] = 200,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """The ledger's entries for people: who did what, to what, when and why."""
    from rich.table import Table

    from poise.audit.ledger import entries, entry_json

    engine = _engine(database_url)
    with engine.connect() as connection:
        found = list(
            entries(
                connection,
                start=_start(start),
                end=_as_of(end) if end else None,
                actor=actor,
                action=action,
                subject=subject,
                limit=limit or None,
            )
        )
    if as_json:
        _print_json([entry_json(e) for e in found])
        return
    table = Table(title="audit ledger")
    for name in ("seq", "at (UTC)", "actor", "action", "subject", "reason", "data"):
        table.add_column(name, justify="right" if name == "seq" else "left", no_wrap=name == "seq")
    for e in found:
        reason = e.reason if e.corrects is None else f"corrects {e.corrects}: {e.reason}"
        table.add_row(
            str(e.seq),
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            e.actor,
            e.action,
            e.subject,
            reason,
            e.data_hash[:12] + "…",
        )
    out.print(table)
    if limit and len(found) == limit:
        err.print(f"the first {limit:,} shown: --limit 0 for all")


def _start(text: str | None) -> datetime | None:
    """A --from: a bare date is the start of that day (UTC)."""
    if text is None:
        return None
    if len(text) == 10:
        return datetime.combine(datetime.fromisoformat(text).date(), datetime.min.time(), UTC)
    return _as_of(text)


# ── proofs ───────────────────────────────────────────────────────────────────


@audit_app.command("prove")
def audit_prove(
    seq: Annotated[int, typer.Argument(help="The entry (its seq).")],
    checkpoint: Annotated[
        int | None, typer.Option("--checkpoint", help="Prove it in this checkpoint (the latest).")
    ] = None,
    head: Annotated[
        bool,
        typer.Option(
            "--head",
            help="If no checkpoint holds it yet, prove it in the ledger as it stands"
            " (unsigned: for a look, not for an examiner).",
        ),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the proof here (default: stdout).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """An inclusion proof of an entry in a signed checkpoint, as JSON."""
    from poise.audit.proofs import inclusion, inclusion_now

    engine = _engine(database_url)
    with engine.connect() as connection:
        if head and checkpoint is None:
            _write(inclusion_now(connection, seq=seq), output)
        else:
            _write(inclusion(connection, seq=seq, number=checkpoint), output)


@audit_app.command("consistency")
def audit_consistency(
    old: Annotated[int, typer.Argument(help="The older checkpoint's number.")],
    new: Annotated[int, typer.Argument(help="The newer checkpoint's number.")],
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the proof here (default: stdout).")
    ] = None,
    database_url: DatabaseOption = None,
) -> None:
    """A consistency proof between two checkpoints, as JSON: the older is the start of
    the newer."""
    from poise.audit.proofs import consistency

    engine = _engine(database_url)
    with engine.connect() as connection:
        _write(consistency(connection, old=old, new=new), output)


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Argument(help="The examiner's file to write (JSON).")],
    start: Annotated[
        str | None, typer.Option("--from", help="Entries from this time (ISO 8601).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Entries up to this time.")] = None,
    key: KeyOption = None,
    public_key: PublicKeyOption = None,
    database_url: DatabaseOption = None,
    as_json: JsonOption = False,
) -> None:
    """An examiner's file: the entries, each with its proof to the latest checkpoint,
    every checkpoint with its consistency proof, and the public key."""
    from poise.audit.proofs import export

    public = _public(key, public_key, needed=True)
    assert public is not None
    engine = _engine(database_url)
    with _bar("proving entries", enabled=not as_json) as tick, engine.connect() as connection:
        document = export(
            connection,
            public=public,
            start=_start(start),
            end=_as_of(end) if end else None,
            progress=tick,
        )
    _write(document, output)
    summary = {
        "file": str(output),
        "entries": len(document["entries"]),
        "checkpoint": document["checkpoint"]["number"],
        "tree_size": document["checkpoint"]["tree_size"],
        "not_yet_checkpointed": document["not_yet_checkpointed"],
    }
    if as_json:
        _print_json(summary)
        return
    out.print(
        f"wrote {output}: {summary['entries']:,} entries proved to checkpoint"
        f" {summary['checkpoint']} ({summary['tree_size']:,} entries)"
    )
    if document["not_yet_checkpointed"]:
        err.print(
            f"[yellow]note:[/yellow] {document['not_yet_checkpointed']:,} entries in the range"
            " came after the latest checkpoint and are not in the file: `poise audit"
            " checkpoint` first"
        )
