"""FIX 4.4: poise's own session layer, on ``simplefix`` for the fields.

Owns: the wire (``codec``: tags, timestamps, encoding, the framer that checks
BodyLength and CheckSum and reports garbled data), the session as a pure state machine
(``session``: logon, heartbeats, test requests, sequence numbers, gaps and resends,
rejects, logout), the asyncio runner and its connections (``connection``: ``Session``,
``Initiator``, ``Acceptor``, the ``Application`` callbacks), where a session's numbers
and sent messages are kept (``store``: the ``SessionStore`` port, ``FileStore``,
``MemoryStore``), its configuration and session files (``config``), the application
messages as typed values (``app``), and its errors (``errors``).

May import: ``poise.domain`` (its errors) and ``simplefix``. May not touch: the system
of record or the bus — a store over the database is the gateway's, handed in through
``SessionStore``; what an order means is the application's, handed in through
``Application``.
"""

from __future__ import annotations

from poise.execute.fix.app import (
    BusinessMessageReject,
    CxlRejResponseTo,
    ExecType,
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderStatusRequest,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
    parse_application,
)
from poise.execute.fix.config import Role, SessionConfig, read_session_file
from poise.execute.fix.connection import Acceptor, Application, Initiator, Session
from poise.execute.fix.errors import FieldError, FixError, NotLoggedOnError, SessionStoreError
from poise.execute.fix.store import FileStore, MemoryStore, SessionStore

__all__ = [
    "Acceptor",
    "Application",
    "BusinessMessageReject",
    "CxlRejResponseTo",
    "ExecType",
    "ExecutionReport",
    "FieldError",
    "FileStore",
    "FixError",
    "Initiator",
    "MemoryStore",
    "NewOrderSingle",
    "NotLoggedOnError",
    "OrdStatus",
    "OrdType",
    "OrderCancelReject",
    "OrderCancelReplaceRequest",
    "OrderCancelRequest",
    "OrderStatusRequest",
    "Role",
    "Session",
    "SessionConfig",
    "SessionStore",
    "SessionStoreError",
    "Side",
    "TimeInForce",
    "parse_application",
    "read_session_file",
]
