"""The names a user gives the rebalancing methods and scenarios, apart from the engine,
so that the command line can offer them without loading a solver. The engine's tables
(``scenarios.METHODS``, ``scenarios.PRESETS``) are keyed by exactly these, in order."""

from __future__ import annotations

__all__ = ["ALL", "METHOD_NAMES", "SCENARIO_NAMES"]

METHOD_NAMES = ("bands", "cash", "optimize")
SCENARIO_NAMES = ("full", "no-gains", "harvest", "cash", "bands")
ALL = "all"  # every scenario, in the order above
