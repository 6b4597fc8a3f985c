"""The latest prices, of every security or of a few: an account's page reads its own."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa

from poise.store import repo
from poise.store import tables as t


def test_latest_prices_when_some_securities_are_named_then_only_theirs(engine: sa.Engine) -> None:
    day = [datetime(2024, 1, d, 21, tzinfo=UTC) for d in (2, 3)]
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.securities),
            [
                {"security_id": s, "symbol": s, "name": s, "kind": "stock",
                 "asset_class": "us_equity", "currency": "USD", "trade_unit": "whole",
                 "trade_step": Decimal(1)}
                for s in ("AAA", "BBB", "CCC")
            ],
        )  # fmt: skip
        connection.execute(
            sa.insert(t.prices),
            [
                {"security_id": s, "as_of": d, "source": "close", "price": Decimal(p)}
                for s, d, p in [("AAA", day[0], "10"), ("AAA", day[1], "11"),
                                ("BBB", day[0], "20"), ("CCC", day[1], "30")]
            ],
        )  # fmt: skip
    with engine.connect() as connection:
        every = repo.latest_prices(connection)
        some = repo.latest_prices(connection, security_ids=["AAA", "CCC", "ZZZ"])
        none = repo.latest_prices(connection, security_ids=[])
        earlier = repo.latest_prices(connection, security_ids=["AAA", "CCC"], as_of=day[0])
    assert some == {"AAA": every["AAA"], "CCC": every["CCC"]}
    assert some["AAA"] == (Decimal(11), day[1])
    assert set(every) == {"AAA", "BBB", "CCC"}
    assert none == {}
    assert earlier == {"AAA": (Decimal(10), day[0])}  # CCC had no price by then
