"""Benchmark: how long a command takes to answer, as a person at a terminal sees it.

    .venv/bin/python bench/startup.py [--runs 15] [--before REV]

Times whole processes (wall clock, median of ``--runs``): ``poise --help``, and
``poise accounts show ACCOUNT`` on the demo firm (built once into
``bench/out/startup/``, from the market data shipped with poise). With ``--before REV``
the same commands are timed on that revision too — checked out into
``bench/out/startup/REV`` and run by the same interpreter with its ``src`` first on
the path — so a change's before and after are measured on one machine, one after the
other. Targets: ``poise --help`` ≤ 0.3 s; ``poise accounts show`` ≤ 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "startup"
ACCOUNT = "58056992"  # an account of the default demo firm (seed 7)


def _run(argv: list[str], *, env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def median_seconds(argv: list[str], *, env: dict[str, str], cwd: Path, runs: int) -> float:
    _run(argv, env=env, cwd=cwd)  # warm the file cache and the bytecode
    return statistics.median(_run(argv, env=env, cwd=cwd) for _ in range(runs))


def demo_database(revision: str | None) -> str:
    """The default demo firm, built by ``revision``'s own code (its schema may differ)."""
    name = f"demo-{revision or 'now'}.db"
    url = f"sqlite:///{OUT / name}"
    if not (OUT / name).exists():
        OUT.mkdir(parents=True, exist_ok=True)
        shared = ROOT.parent / "shared" / "data"  # older revisions read it from there
        data = ["--data-dir", str(shared)] if revision and shared.is_dir() else []
        subprocess.run(
            [sys.executable, "-m", "poise", "demo", "--json", "--out", str(OUT / "files"), *data],
            env={**os.environ, "POISE_DATABASE_URL": url, "PYTHONPATH": str(source_of(revision))},
            cwd=OUT,
            check=True,
            capture_output=True,
        )
    return url


def source_of(revision: str | None) -> Path:
    if revision is None:
        return ROOT / "src"
    tree = OUT / revision
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=True)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), revision],
            check=True,
            capture_output=True,
        )
    return tree / "src"


def measure(revision: str | None, *, runs: int) -> dict[str, float]:
    url = demo_database(revision)
    env = {**os.environ, "POISE_DATABASE_URL": url, "PYTHONPATH": str(source_of(revision))}
    poise = [sys.executable, "-m", "poise"]
    return {
        "poise --help": median_seconds([*poise, "--help"], env=env, cwd=OUT, runs=runs),
        f"poise accounts show {ACCOUNT}": median_seconds(
            [*poise, "accounts", "show", ACCOUNT], env=env, cwd=OUT, runs=runs
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--before", help="a git revision to time as well")
    args = parser.parse_args()
    targets = {"poise --help": 0.3, f"poise accounts show {ACCOUNT}": 1.0}
    now = measure(None, runs=args.runs)
    before = measure(args.before, runs=args.runs) if args.before else {}
    print(f"median wall time of {args.runs} runs each (one warm-up run first)")
    for command, seconds in now.items():
        target = targets[command]
        mark = "✓" if seconds <= target else "✗"
        was = f"   before ({args.before}): {before[command]:.3f} s" if before else ""
        print(f"{command:<34} {seconds:6.3f} s   target ≤ {target} s {mark}{was}")


if __name__ == "__main__":
    main()
