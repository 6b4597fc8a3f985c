"""A session set up from a QuickFIX-style session file, with the command's options
winning over it and keys poise does not know refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from poise.domain.errors import ConfigError
from poise.execute.fix.config import Role, SessionConfig, read_session_file

SESSION_FILE = """\
[DEFAULT]
ConnectionType=acceptor
HeartBtInt=15
FileStorePath=state/broker
SocketAcceptPort=9880

[SESSION]
BeginString=FIX.4.4
SenderCompID=SIMBROKER
TargetCompID=POISE-RIA
ResetOnLogon=Y
"""


def test_session_file_when_read_then_the_session_and_where_it_listens_are_set(
    tmp_path: Path,
) -> None:
    path = tmp_path / "broker.cfg"
    path.write_text(SESSION_FILE)

    found = read_session_file(path)

    assert found.config == SessionConfig(
        sender_comp_id="SIMBROKER",
        target_comp_id="POISE-RIA",
        role=Role.ACCEPTOR,
        heartbeat_interval=15,
        reset_on_logon=True,
    )
    assert (found.port, found.store_path) == (9880, Path("state/broker"))


def test_session_file_when_options_are_given_then_they_win(tmp_path: Path) -> None:
    path = tmp_path / "broker.cfg"
    path.write_text(SESSION_FILE)

    found = read_session_file(
        path, reset_on_logon=False, sender_comp_id="OTHER", heartbeat_interval=None
    )

    assert (found.config.sender_comp_id, found.config.reset_on_logon) == ("OTHER", False)
    assert found.config.heartbeat_interval == 15


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("ResetOnLogon=Y", "ResetOnLogn=Y"), "unknown keys ResetOnLogn"),
        (("SenderCompID=SIMBROKER\n", ""), "sender_comp_id not given"),
        (("HeartBtInt=15", "HeartBtInt=often"), "HeartBtInt='often'"),
        (("BeginString=FIX.4.4", "BeginString=FIX.4.2"), "BeginString must be FIX.4.4"),
        (("ResetOnLogon=Y", "ResetOnLogon=maybe"), "ResetOnLogon='maybe': Y or N"),
    ],
)
def test_session_file_when_wrong_then_refused_saying_what(
    tmp_path: Path, change: tuple[str, str], says: str
) -> None:
    path = tmp_path / "broker.cfg"
    path.write_text(SESSION_FILE.replace(*change))

    with pytest.raises(ConfigError, match=says):
        read_session_file(path)


def test_config_when_both_comp_ids_are_the_same_then_refused() -> None:
    with pytest.raises(ConfigError, match="must differ"):
        SessionConfig(sender_comp_id="X", target_comp_id="X", role=Role.INITIATOR)
