"""Where each custodian's orders go: the firm's FIX routes, one session each.

A routes file is TOML, one table a route (``docs/execution.md#routes``)::

    [routes.schwab]
    host = "fix.example.net"
    port = 9878
    sender = "POISE"          # our SenderCompID
    target = "SCHWAB"         # theirs
    account = "FIRM-BLOCK"    # the FIX Account(1) block orders go out under
    custodians = ["Schwab"]   # the custodians whose accounts trade here
    heartbeat = 30
    reset_on_logon = false

A route with no ``custodians`` takes every custodian no other route names; there may be
one such. Unknown keys are refused, with the route and key named: a misspelt
``custodian`` would otherwise send a custodian's orders down the wrong line. Without a
file every custodian goes to the simulated broker (``poise broker``). Pure: the text
is handed in.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from poise.domain.errors import ValidationError

__all__ = ["DEFAULT_ROUTE", "Route", "default_routes", "parse_routes", "route_names"]

DEFAULT_ROUTE = "simulated"


@dataclass(frozen=True, slots=True)
class Route:
    """One FIX session to one counterparty."""

    name: str
    host: str
    port: int
    sender: str = "POISE"
    target: str = "BROKER"
    account: str = "POISE"
    custodians: frozenset[str] = field(default_factory=frozenset)  # empty: every other one
    heartbeat: int = 30
    reset_on_logon: bool = False
    reconnect: float = 2.0  # seconds between attempts to connect

    def __post_init__(self) -> None:
        if not self.name or not self.host:
            raise ValidationError(f"route {self.name!r} needs a name and a host")
        if not 0 < self.port < 65536:
            raise ValidationError(f"route {self.name}: port {self.port} is not a TCP port")
        if not self.sender or not self.target:
            raise ValidationError(f"route {self.name}: sender and target CompIDs are needed")
        if self.heartbeat <= 0 or self.reconnect <= 0:
            raise ValidationError(f"route {self.name}: heartbeat and reconnect must be positive")

    @property
    def session_key(self) -> str:
        """The key its sequence numbers and sent messages are kept under."""
        return f"FIX.4.4:{self.sender}->{self.target}"


_KEYS = frozenset(f.name for f in fields(Route)) - {"name"}


def _route(name: str, table: object) -> Route:
    if not isinstance(table, Mapping):
        raise ValidationError(f"routes file: [routes.{name}] must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ValidationError(
            f"routes file: [routes.{name}] has unknown key(s) {', '.join(unknown)};"
            f" known: {', '.join(sorted(_KEYS))}"
        )
    values = dict(table)
    custodians = values.pop("custodians", [])
    if not isinstance(custodians, list) or not all(isinstance(c, str) for c in custodians):
        raise ValidationError(f"routes file: [routes.{name}] custodians must be a list of names")
    try:
        return Route(name=name, custodians=frozenset(custodians), **values)
    except TypeError as exc:
        raise ValidationError(f"routes file: [routes.{name}]: {exc}") from None


def parse_routes(text: str, *, source: str = "routes file") -> tuple[Route, ...]:
    """The routes of a TOML text; a custodian named by two routes, or two default
    routes, is refused."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{source}: not TOML: {exc}") from None
    unknown = sorted(set(document) - {"routes"})
    if unknown or not isinstance(document.get("routes"), Mapping) or not document["routes"]:
        raise ValidationError(f"{source}: expected [routes.<name>] tables and nothing else")
    routes = tuple(_route(name, table) for name, table in sorted(document["routes"].items()))
    seen: dict[str, str] = {}
    for route in routes:
        for custodian in route.custodians:
            if custodian in seen:
                raise ValidationError(
                    f"{source}: custodian {custodian!r} is on routes {seen[custodian]}"
                    f" and {route.name}"
                )
            seen[custodian] = route.name
    defaults = [r.name for r in routes if not r.custodians]
    if len(defaults) > 1:
        raise ValidationError(f"{source}: more than one route takes every custodian: {defaults}")
    return routes


def default_routes(host: str, port: int) -> tuple[Route, ...]:
    """Every custodian to the simulated broker at ``host:port``."""
    return (Route(name=DEFAULT_ROUTE, host=host, port=port),)


def route_names(routes: Sequence[Route], custodians: Sequence[str]) -> dict[str, str]:
    """Each custodian's route, by name; a custodian no route takes is refused."""
    named = {c: r.name for r in routes for c in r.custodians}
    fallback = next((r.name for r in routes if not r.custodians), None)
    found: dict[str, str] = {}
    for custodian in custodians:
        route = named.get(custodian, fallback)
        if route is None:
            raise ValidationError(f"no route takes custodian {custodian!r}'s orders")
        found[custodian] = route
    return found
