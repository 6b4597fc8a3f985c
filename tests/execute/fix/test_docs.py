"""docs/fix.md says what ``poise broker`` takes, and its session file example reads."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from poise.cli import app
from poise.execute.fix.config import Role, read_session_file

DOC = (Path(__file__).resolve().parents[3] / "docs" / "fix.md").read_text()


def test_session_file_example_when_read_then_it_is_the_broker_session(tmp_path: Path) -> None:
    (example,) = re.findall(r"```ini\n(.*?)```", DOC, re.DOTALL)
    path = tmp_path / "broker.cfg"
    path.write_text(example)

    found = read_session_file(path)

    assert (found.config.sender_comp_id, found.config.target_comp_id) == ("BROKER", "POISE")
    assert (found.config.role, found.port) == (Role.ACCEPTOR, 9878)


def test_options_table_when_compared_with_the_command_then_each_side_names_the_same() -> None:
    command = typer.main.get_command(app).commands["broker"]  # type: ignore[attr-defined]
    taken = {
        name
        for param in command.params
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("--") and name not in ("--help", "--database-url")
    }
    table = DOC.split("| option | default | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"`(--[a-z-]+)", table)) | set(re.findall(r"/ (--[a-z-]+)`", table))

    assert documented == taken
