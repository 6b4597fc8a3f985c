"""The ``poise`` command: each stage on its own, for people (Rich) and scripts (--json).

Owns: the command line — ``common`` (the app, options, printing), ``records`` (schema,
ingest, accounts, demo), ``monitoring`` (drift, holds, requests, monitor, replays),
``rebalancing`` and ``proposals`` (finding proposals, and the one JSON shape of one),
``approvals`` (approve, reject, override, acknowledge, release: as the user ``--as``),
``execution`` (execute: released proposals crossed, blocked and sent over FIX, fills
booked back; orders; crosses),
``washsales`` (a household's wash sales), ``backtest`` (methods compared after tax on
a price history, and the backtests kept), ``runs`` (the cluster firm-wide runs fan out
to, and a run's progress), ``worker`` (answering rebalance requests as they arrive),
``serve`` (the API), ``users`` (who may sign in to it: users, passwords, tokens),
``audit`` (the audit ledger: verify, show, checkpoints, proofs, exports).
May not hold finance rules: commands call the workflow shells.
"""

from __future__ import annotations

import sys

# The commands register as their modules load, in the order `poise --help` lists them:
# the loop's order.
# isort: off
from poise.cli import records  # demo, ingest, accounts, db
from poise.cli import monitoring  # drift, holds, monitor, requests, prices
from poise.cli import rebalancing  # rebalance
from poise.cli import proposals  # proposals
from poise.cli import approvals  # approve, reject, override, acknowledge, release
from poise.cli import comply  # comply
from poise.cli import execution  # execute, orders, crosses
from poise.cli import reconcile  # reconcile
from poise.cli import report  # report
from poise.cli import washsales  # washsales
from poise.cli import backtest  # backtest, backtests
from poise.cli import runs  # cluster
from poise.cli import worker  # worker
from poise.cli import serve  # serve
from poise.cli import users  # users
from poise.cli import audit  # audit
from poise.cli import broker  # broker

# isort: on
from poise.cli.common import app, err
from poise.domain.errors import PoiseError

__all__ = [
    "app",
    "approvals",
    "audit",
    "backtest",
    "broker",
    "comply",
    "execution",
    "main",
    "monitoring",
    "proposals",
    "rebalancing",
    "reconcile",
    "records",
    "report",
    "runs",
    "serve",
    "users",
    "washsales",
    "worker",
]


def main() -> None:
    """Run the command; typed errors become a one-line message and their exit code.

    A database or driver error that nothing translated into a typed error still gets one
    line (without any password) and the database's exit code, never a traceback.
    """
    from rich.markup import escape

    try:
        app()
    except PoiseError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        from poise.domain.errors import StoreError
        from poise.store.faults import untranslated

        line = untranslated(exc)
        if line is None:
            raise
        err.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
        sys.exit(StoreError.exit_code)
