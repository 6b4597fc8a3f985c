"""Benchmark: the whole demo loop, stage by stage.

    .venv/bin/python bench/demo_loop.py [--households 200] [--quick]

``poise demo`` as a user runs it, in an empty folder with a fresh SQLite store: the firm
generated and loaded, then monitor, a firm-wide ``optimize`` run, approvals and
releases, execution against the simulated broker over FIX, booking and reconciliation,
and the reports. Prints each stage's seconds (``--json``'s figures) and the whole.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "poise", "demo", "--households", str(args.households),
             "--json", "--database-url", f"sqlite:///{Path(folder) / 'poise.db'}"],
            cwd=folder, capture_output=True, text=True, check=False,
        )  # fmt: skip
        whole = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(done.stderr)
    report = json.loads(done.stdout)
    loop = report["loop"]
    names = " | ".join(x["stage"] for x in loop)
    print(f"| date | households | {names} | loop | whole command | load |")
    print("|---|---:|" + "---:|" * (len(loop) + 3))
    stages = " | ".join(f"{x['seconds']:.1f}" for x in loop)
    print(
        f"| {datetime.now(UTC).date()} | {report['summary']['households']} | {stages} |"
        f" {sum(x['seconds'] for x in loop):.1f} | {whole:.1f} | {os.getloadavg()[0]:.1f} |"
    )
    for x in loop:
        print(f"- {x['stage']}: {x['said']}")


if __name__ == "__main__":
    main()
