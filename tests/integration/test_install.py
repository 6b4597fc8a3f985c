"""poise as a user gets it: the package built, installed into a fresh virtual
environment, and run in an empty folder with nothing beside it — no repository, no
market data folder, no settings. The demo runs to its summary from what the package
ships."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


@pytest.mark.slow
def test_install_when_built_and_installed_anywhere_then_the_demo_runs_to_its_summary(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # Nothing of the project's own environment may leak in: no POISE_* settings, no
    # path to the source tree, no virtual environment of the repository's.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("POISE_", "PYTHON", "VIRTUAL_ENV"))
    }
    build = tmp_path_factory.mktemp("build")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(build), "-q"],
        cwd=build,
        env=env,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = build.glob("poise-*.whl")

    place = tmp_path_factory.mktemp("elsewhere")
    venv.create(place / "venv", with_pip=True)
    python = place / "venv" / "bin" / "python"
    installed = _run([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=place, env=env)
    assert installed.returncode == 0, installed.stderr

    empty = place / "empty"
    empty.mkdir()
    demo = _run([str(place / "venv" / "bin" / "poise"), "demo", "--households", "5"], cwd=empty,
                env={**env, "COLUMNS": "120"})  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    assert "5 households" in demo.stdout
    assert "largest unrealised gains" in demo.stdout
    assert sorted(p.name for p in empty.iterdir()) == ["demo-data", "poise.db"]
    # The installed poise ran, not the source tree's.
    where = _run([str(python), "-c", "import poise; print(poise.__file__)"], cwd=empty, env=env)
    assert str(place / "venv") in where.stdout, where.stdout
