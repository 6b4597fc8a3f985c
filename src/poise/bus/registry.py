"""Buses by name: the explicit table that settings choose from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from poise.bus.inprocess import InProcessBus
from poise.bus.nats import NatsBus
from poise.bus.port import Bus
from poise.domain.errors import ConfigError

__all__ = ["BUSES", "open_bus"]


async def _open_inprocess(url: str | None) -> Bus:
    del url  # nothing to connect to; a configured NATS URL is simply not used
    return InProcessBus()


async def _open_nats(url: str | None) -> Bus:
    if not url:
        raise ConfigError("the nats bus needs a server URL (POISE_NATS_URL)")
    return await NatsBus.connect(url)


BUSES: dict[str, Callable[[str | None], Awaitable[Bus]]] = {
    "inprocess": _open_inprocess,
    "nats": _open_nats,
}


async def open_bus(name: str, *, url: str | None = None) -> Bus:
    """The bus called ``name`` (``"inprocess"`` or ``"nats"``), ready to use.

    ``url`` is where the NATS server is; the in-process bus ignores it.
    """
    try:
        opener = BUSES[name]
    except KeyError:
        known = ", ".join(sorted(BUSES))
        raise ConfigError(f"unknown bus {name!r}: choose one of {known}") from None
    return await opener(url)
