"""How a session is set up: who it is, whom it talks to, its timers; and the session
file (an INI file like QuickFIX's) that can say so.

A config is frozen and checked when built; a session file with a key poise does not
know is refused, not ignored.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from poise.domain.errors import ConfigError
from poise.execute.fix.codec import BEGIN_STRING

__all__ = ["Role", "SessionConfig", "SessionFile", "read_session_file"]


class Role(StrEnum):
    """Which side opens the connection and sends the first Logon."""

    INITIATOR = "initiator"
    ACCEPTOR = "acceptor"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """One FIX 4.4 session as seen from this side.

    ``heartbeat_interval`` (HeartBtInt(108), seconds) is what an initiator asks for; an
    acceptor uses the interval in the Logon it receives. ``reset_on_logon``: an
    initiator sends ResetSeqNumFlag(141)=Y and starts both sequence numbers at 1 at
    every logon; an acceptor resets at every Logon it accepts (and always when the
    counterparty's Logon carries 141=Y). ``max_latency``: the most a message's
    SendingTime(52) may differ from the clock, in seconds (0: not checked). Timeouts
    are in seconds.
    """

    sender_comp_id: str
    target_comp_id: str
    role: Role
    heartbeat_interval: int = 30
    reset_on_logon: bool = False
    max_latency: float = 120.0
    logon_timeout: float = 10.0
    logout_timeout: float = 2.0
    reconnect_interval: float = 5.0

    def __post_init__(self) -> None:
        for name in ("sender_comp_id", "target_comp_id"):
            value = getattr(self, name)
            if not value or not value.isprintable() or "=" in value or " " in value:
                raise ConfigError(f"{name} {value!r}: printable, with no '=' or space")
        if self.sender_comp_id == self.target_comp_id:
            raise ConfigError("a session's SenderCompID and TargetCompID must differ")
        if self.heartbeat_interval < 1:
            raise ConfigError(f"heartbeat interval {self.heartbeat_interval}: at least 1 second")
        for name in ("max_latency", "logon_timeout", "logout_timeout", "reconnect_interval"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} {getattr(self, name)}: not negative")

    @property
    def key(self) -> str:
        """The session's name in stores and logs: ``FIX.4.4-SENDER-TARGET``."""
        return f"{BEGIN_STRING}-{self.sender_comp_id}-{self.target_comp_id}"


@dataclass(frozen=True, slots=True)
class SessionFile:
    """What a session file says: the session, where to connect or listen, its store."""

    config: SessionConfig
    host: str | None = None
    port: int | None = None
    store_path: Path | None = None


# Session file keys (QuickFIX's names) -> what they set.
_CONFIG_KEYS = {
    "SenderCompID": "sender_comp_id",
    "TargetCompID": "target_comp_id",
    "ConnectionType": "role",
    "HeartBtInt": "heartbeat_interval",
    "ResetOnLogon": "reset_on_logon",
    "MaxLatency": "max_latency",
    "LogonTimeout": "logon_timeout",
    "LogoutTimeout": "logout_timeout",
    "ReconnectInterval": "reconnect_interval",
}
_PLACE_KEYS = {
    "SocketAcceptHost",
    "SocketAcceptPort",
    "SocketConnectHost",
    "SocketConnectPort",
    "FileStorePath",
}
_KNOWN = {*_CONFIG_KEYS, *_PLACE_KEYS, "BeginString"}


def read_session_file(path: Path, **overrides: Any) -> SessionFile:
    """The session in ``path``: a ``[DEFAULT]`` section and one ``[SESSION]`` section,
    QuickFIX's keys (``SenderCompID``, ``TargetCompID``, ``ConnectionType``,
    ``HeartBtInt``, ``ResetOnLogon``, ``SocketAcceptPort``, ``FileStorePath``, …).
    ``overrides``: ``SessionConfig`` fields that win over the file (None: the file's)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    try:
        with path.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except (OSError, configparser.Error) as exc:
        raise ConfigError(f"session file {path}: {exc}") from None
    sessions = parser.sections()
    if sessions != ["SESSION"]:
        raise ConfigError(f"session file {path}: one [SESSION] section, found {sessions}")
    values = dict(parser.items("SESSION"))
    unknown = sorted(set(values) - _KNOWN)
    if unknown:
        raise ConfigError(f"session file {path}: unknown keys {', '.join(unknown)}")
    if values.get("BeginString", BEGIN_STRING) != BEGIN_STRING:
        raise ConfigError(f"session file {path}: BeginString must be {BEGIN_STRING}")
    settings: dict[str, Any] = {}
    for key, name in _CONFIG_KEYS.items():
        if key in values:
            settings[name] = _value(path, key, values[key], name)
    known = {f.name for f in fields(SessionConfig)}
    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(f"{name} is not a session setting")
        if value is not None:
            settings[name] = value
    missing = [
        name for name in ("sender_comp_id", "target_comp_id", "role") if name not in settings
    ]
    if missing:
        raise ConfigError(f"session file {path}: {', '.join(missing)} not given")
    config = SessionConfig(**settings)
    acceptor = config.role is Role.ACCEPTOR
    host = values.get("SocketAcceptHost" if acceptor else "SocketConnectHost")
    port_text = values.get("SocketAcceptPort" if acceptor else "SocketConnectPort")
    port = _value(path, "port", port_text, "port") if port_text is not None else None
    store = values.get("FileStorePath")
    return SessionFile(
        config=config,
        host=host,
        port=port,
        store_path=Path(store) if store else None,
    )


def _value(path: Path, key: str, text: str, name: str) -> Any:
    try:
        if name == "role":
            return Role(text.strip().lower())
        if name == "reset_on_logon":
            if text.strip().upper() not in {"Y", "N"}:
                raise ValueError("Y or N")
            return text.strip().upper() == "Y"
        if name in {"heartbeat_interval", "port"}:
            return int(text)
        if name in {"sender_comp_id", "target_comp_id"}:
            return text.strip()
        return float(text)
    except ValueError as exc:
        raise ConfigError(f"session file {path}: {key}={text!r}: {exc}") from None
