"""The ``poise`` command: each stage on its own, for people (Rich) and scripts (--json).

Owns: the command line — ``common`` (the app, options, printing), ``records`` (schema,
ingest, accounts, demo), ``monitoring`` (drift, holds, requests, monitor, replays),
``rebalancing`` and ``proposals`` (finding proposals, and the one JSON shape of one).
May not hold finance rules: commands call the workflow shells.
"""

from __future__ import annotations

import sys

from poise.cli import monitoring, proposals, rebalancing, records
from poise.cli.common import app, err
from poise.domain.errors import PoiseError

__all__ = ["app", "main", "monitoring", "proposals", "rebalancing", "records"]


def main() -> None:
    """Run the command; typed errors become a one-line message and their exit code."""
    try:
        app()
    except PoiseError as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(exc.exit_code)
