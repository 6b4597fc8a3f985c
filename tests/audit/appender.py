"""Append entries to a ledger from a process of its own, one transaction each, as the
stages of several servers would: ``python -m tests.audit.appender URL NAME COUNT``."""

from __future__ import annotations

import sys

from poise.audit import ledger
from poise.store.engine import make_engine


def main(url: str, name: str, count: int) -> None:
    engine = make_engine(url).execution_options(writes=True)
    for n in range(count):
        with engine.begin() as connection:
            ledger.append(
                connection, actor=name, action="test.append", subject=f"{name}-{n}", data={"n": n}
            )
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
