"""Keyword-only repository functions: the queries the shells need, and rows into domain
objects, one module per context (``files``, ``book``, ``prices``, ``requests``, ``proposals``)."""

from __future__ import annotations

from poise.store.repo.book import (
    account,
    account_lots,
    accounts,
    buys_since,
    cash_flows,
    households,
    latest_positions,
    lots,
    models,
    open_breaks,
    sales_since,
    securities,
)
from poise.store.repo.files import (
    FileLoad,
    Quarantined,
    key_series,
    list_quarantine,
    record_load,
    store_quarantine,
    table_for,
)
from poise.store.repo.prices import latest_prices, price_history
from poise.store.repo.proposals import proposals, save_proposal
from poise.store.repo.requests import (
    list_requests,
    open_request_reasons,
    save_requests,
    stored_request_ids,
)

__all__ = [
    "FileLoad",
    "Quarantined",
    "account",
    "account_lots",
    "accounts",
    "buys_since",
    "cash_flows",
    "households",
    "key_series",
    "latest_positions",
    "latest_prices",
    "list_quarantine",
    "list_requests",
    "lots",
    "models",
    "open_breaks",
    "open_request_reasons",
    "price_history",
    "proposals",
    "record_load",
    "sales_since",
    "save_proposal",
    "save_requests",
    "securities",
    "store_quarantine",
    "stored_request_ids",
    "table_for",
]
