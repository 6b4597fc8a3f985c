"""Database faults in words a person can act on.

A driver reports a fault in its own terms, deep in a traceback. The faults that come
from where the data lives — a server that does not answer, a database or role that
does not exist, a file that is not a database, a read-only file, a lock held too long,
a full disk — become a :class:`~poise.domain.errors.StoreError` of one line that says
what is wrong and what to do. Errors of poise's own making (a broken constraint, SQL
that does not compile) are left alone: they are bugs, and :func:`untranslated` gives
them one line at the very edge. No message carries a password.

Owns: the wording of database faults. May not touch: engines or connections (the
engine module calls :func:`translate` from its error hook).
"""

from __future__ import annotations

import re
import sqlite3
import sys
from typing import TYPE_CHECKING, TypeGuard

import sqlalchemy as sa
from sqlalchemy.engine import URL

from poise.domain.errors import StoreError

if TYPE_CHECKING:
    import psycopg

__all__ = ["SETTING", "WHERE", "read_only", "redact", "translate", "untranslated", "where"]

SETTING = "POISE_DATABASE_URL / --database-url"  # where a user names the database
WHERE = f"({SETTING})"  # a hint at the end of a message

# user:password@ (in a URL, well formed or not) and password=… (in a libpq string)
_PASSWORD = re.compile(r"(?i)([\w.%+-]+:)[^@\s/]*@|(password\s*=\s*)('[^']*'|\S+)")


def redact(text: str) -> str:
    """``text`` with every password in a URL or a connection string replaced by ``***``."""
    return _PASSWORD.sub(lambda m: f"{m[1]}***@" if m[1] is not None else f"{m[2]}***", text)


def where(url: URL) -> str:
    """The database as a person names it: a file's path, or a server's host and port."""
    if url.get_backend_name() == "sqlite":
        return str(url.database or "")
    host = url.host or url.query.get("host") or "the local socket"
    return f"{host}:{url.port or 5432}" if isinstance(host, str) else str(host)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return redact(lines[0]) if lines else type(error).__name__


# ── SQLite ────────────────────────────────────────────────────────────────────


def read_only(path: str) -> StoreError:
    """A command that writes, on a SQLite database this user cannot write."""
    return StoreError(
        f"the SQLite database {path} is read-only (its file or its folder cannot be"
        " written) and this command writes to it — make both writable for this user,"
        " or work on a copy"
    )


_LOCKED = (
    "the SQLite database {path} is locked by another writer — try again when that"
    " command has finished"
)
_CANNOT = "cannot use the SQLite database {path}: {text} " + WHERE

# A SQLite result code's name (its start: SQLITE_BUSY covers SQLITE_BUSY_SNAPSHOT),
# and what to tell the user; {path} is the file, {text} what SQLite said.
_SQLITE_FAULTS: tuple[tuple[str, str], ...] = (
    ("SQLITE_BUSY", _LOCKED),
    ("SQLITE_LOCKED", _LOCKED),
    (
        "SQLITE_NOTADB",
        "{path} is not a SQLite database — point " + SETTING + " at a poise database, or at"
        " a new file to start one",
    ),
    ("SQLITE_CORRUPT", "the SQLite database {path} is damaged ({text}) — restore it from a backup"),
    ("SQLITE_FULL", "no room left to write the SQLite database {path} ({text})"),
    ("SQLITE_CANTOPEN", _CANNOT),
    ("SQLITE_IOERR", _CANNOT),
    ("SQLITE_PERM", _CANNOT),
)


def _sqlite(error: sqlite3.Error, path: str, *, connecting: bool) -> StoreError | None:
    name = getattr(error, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_READONLY"):
        return read_only(path)
    found = next((advice for code, advice in _SQLITE_FAULTS if name.startswith(code)), None)
    if found is None and connecting:  # opening failed: whatever it was, it is the file's
        found = _CANNOT
    return None if found is None else StoreError(found.format(path=path, text=_first_line(error)))


# ── PostgreSQL ────────────────────────────────────────────────────────────────

# What libpq and the server say when a connection fails, and what to tell the user.
_CONNECT_FAULTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), advice)
    for pattern, advice in (
        (
            r"connection refused",
            "cannot reach PostgreSQL at {where}: connection refused — is the server running?",
        ),
        (
            r"timeout expired|timed out",
            "cannot reach PostgreSQL at {where}: no answer in time — are the host and port"
            " right, and is the server running?",
        ),
        (
            r"resolve host|translate host name|name or service not known",
            "cannot reach PostgreSQL at {where}: the host name does not resolve — check it",
        ),
        (
            r'database "(?P<name>[^"]*)" does not exist',
            'PostgreSQL at {where} has no database "{name}" — create it'
            " (createdb {name}) or name another",
        ),
        (
            r'role "(?P<name>[^"]*)" does not exist',
            'PostgreSQL at {where} has no role "{name}" — create it or name another user',
        ),
        (
            r'password authentication failed for user "(?P<name>[^"]*)"',
            'PostgreSQL at {where} refused the password of "{name}" — check it',
        ),
        (
            r"no password supplied|password is required",
            "PostgreSQL at {where} wants a password and none was given — add it to the URL"
            " or to ~/.pgpass",
        ),
        (
            r'no pg_hba\.conf entry for host "[^"]*", user "(?P<name>[^"]*)"',
            'PostgreSQL at {where} does not let "{name}" connect from here (pg_hba.conf)',
        ),
    )
)

_FATAL = re.compile(r"FATAL:\s*(?P<text>.+)")


def _postgres_connect(error: psycopg.Error, url: URL) -> StoreError:
    text = redact(str(error))
    for pattern, advice in _CONNECT_FAULTS:
        found = pattern.search(text)
        if found is not None:
            name = found.groupdict().get("name", "")
            return StoreError(f"{advice.format(where=where(url), name=name)} {WHERE}")
    fatal = _FATAL.search(text)
    said = fatal["text"].strip() if fatal else _first_line(error)
    return StoreError(f"cannot connect to PostgreSQL at {where(url)}: {said} {WHERE}")


# SQLSTATE classes that are about the server or the link to it, not about poise's SQL:
# 08 connection exception, 53 insufficient resources, 57 operator intervention, 58
# system error; and 25006, a transaction that may not write (a read-only replica).
_SERVER_CLASSES = ("08", "53", "57", "58")


def _postgres(
    error: psycopg.Error, url: URL, *, connecting: bool, disconnect: bool
) -> StoreError | None:
    if connecting:
        return _postgres_connect(error, url)
    state = error.sqlstate or ""
    if state == "25006":
        return StoreError(
            f"PostgreSQL at {where(url)} is read-only (a standby?) and this command writes"
            f" — point {SETTING} at the primary"
        )
    if disconnect or state[:2] in _SERVER_CLASSES:
        return StoreError(f"PostgreSQL at {where(url)} failed: {_first_line(error)}")
    return None


def translate(
    error: BaseException, url: URL, *, connecting: bool, disconnect: bool = False
) -> StoreError | None:
    """The :class:`StoreError` for a driver's ``error`` on the database at ``url``, or
    ``None`` when the error is not a fault of the database (a bug to report as it is).

    ``connecting``: the error came while opening a connection, where every failure is
    the database's (unreachable, missing, refused). ``disconnect``: the driver reports
    the connection lost.
    """
    if isinstance(error, sqlite3.Error):
        return _sqlite(error, where(url), connecting=connecting)
    if _is_psycopg(error):
        return _postgres(error, url, connecting=connecting, disconnect=disconnect)
    return None


def _is_psycopg(error: BaseException) -> TypeGuard[psycopg.Error]:
    """Whether ``error`` is psycopg's (loaded only where PostgreSQL is used)."""
    driver = sys.modules.get("psycopg")
    return driver is not None and isinstance(error, driver.Error)


def untranslated(error: BaseException) -> str | None:
    """One password-free line for a database error nothing translated, or ``None`` when
    ``error`` is not a database error at all."""
    if isinstance(error, sa.exc.DBAPIError) and error.orig is not None:
        cause: BaseException = error.orig
    elif isinstance(error, sa.exc.SQLAlchemyError | sqlite3.Error) or _is_psycopg(error):
        cause = error
    else:
        return None
    return f"database error ({type(cause).__module__}.{type(cause).__name__}): {_first_line(cause)}"
