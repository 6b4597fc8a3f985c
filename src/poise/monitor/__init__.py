"""Watching every account: drift against its model, holds on bad data, triggers.

Owns: the firm laid out as arrays (``book``), drift and band checks vectorised over
every account (``drift``), loss-harvest opportunities (``harvest``), data-integrity
holds (``holds``), among them implausible prices (``plausible``), and the rebalance
requests they lead to (``triggers``).
May not touch: the store, the bus, files or the clock. The shell loads the firm,
passes in the day, and publishes what comes out.
"""
