"""The demo firm: a realistic adviser's book built from real market data.

Owns: the demo's reference data (``catalog``), the demo market derived from the
shared price files (``market``), the pure generator of households, accounts, lots and
transactions (``firm``, ``holdings``) and the one I/O shell (``files``) that reads the
market data and writes one canonical CSV a kind.
May not touch: the store or the bus. What it writes is ingested like any firm's files.
"""

from poise.demo.files import generate_firm, read_market, write_backtest_inputs, write_firm
from poise.demo.firm import KINDS, Firm, Progress, build_firm
from poise.demo.market import Market, build_market

__all__ = [
    "KINDS",
    "Firm",
    "Market",
    "Progress",
    "build_firm",
    "build_market",
    "generate_firm",
    "read_market",
    "write_backtest_inputs",
    "write_firm",
]
