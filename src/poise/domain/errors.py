"""Typed errors. The CLI maps each to an exit code, the API to an HTTP status.

Errors are never swallowed: a caller either handles the type it expects or lets it
reach the shell, which reports it.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "ForbiddenError",
    "FormatError",
    "NotFoundError",
    "PoiseError",
    "StoreError",
    "ValidationError",
]


class PoiseError(Exception):
    """Base of every error poise raises on purpose."""

    exit_code = 1
    http_status = 500


class ValidationError(PoiseError, ValueError):
    """A value broke a rule of its type (a negative quantity, weights not summing to 1)."""

    exit_code = 3
    http_status = 422


class FormatError(PoiseError):
    """A whole file is not in a format poise reads; nothing of it is loaded."""

    exit_code = 4
    http_status = 400


class NotFoundError(PoiseError, LookupError):
    """Something named by id does not exist."""

    exit_code = 5
    http_status = 404


class StoreError(PoiseError):
    """The system of record cannot be used: not reachable, missing, not a database,
    read-only for a write, locked too long, or not at the expected schema."""

    exit_code = 6
    http_status = 503


class ConfigError(PoiseError):
    """A setting is missing or wrong (a database URL poise cannot use at all, say)."""

    exit_code = 2
    http_status = 500


class ConflictError(PoiseError):
    """What was asked would overwrite or merge into something already there (a demo
    into a store that holds a firm); the message says how to go ahead."""

    exit_code = 7
    http_status = 409


class AuthError(PoiseError):
    """Who is asking is not known: no credentials, or credentials that do not hold (a
    wrong password, an expired or tampered token, a revoked one, a locked account).
    Its message tells a guesser nothing to go on: an unknown user and a wrong password
    read the same."""

    exit_code = 9  # the command line: no user named by --as (POISE_USER), or not one who may
    http_status = 401


class ForbiddenError(PoiseError):
    """Who is asking is known but may not do this (a client approving trades, a token
    with only the ``read`` scope writing)."""

    exit_code = 10  # the command line: the user --as names may not do this
    http_status = 403
