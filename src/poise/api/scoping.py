"""Object-level authorisation, in one place.

Every data router is made by :func:`scoped_router`: each of its routes depends on
:func:`guard`, which finds who is asking (:mod:`poise.api.auth`) and, for every path
parameter that names an object, the household that object belongs to — and answers
404, exactly as for an object that does not exist, when that household is outside
the caller's :class:`~poise.domain.users.Scope`. A path parameter with no rule here
is a server error, never a silent pass: a new route cannot skip the check. Lists are
scoped by their queries, which take the caller's scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request

from poise.api.auth import Principal, PrincipalDep
from poise.api.deps import EngineDep
from poise.domain.errors import NotFoundError
from poise.store import tables as t

__all__ = ["OWNERS", "ScopedDep", "guard", "scoped_router"]

# Path parameter → the household of the object it names (None: an object of no
# household, any signed-in user's to see); NotFoundError when there is no such object.
Owner = Callable[[sa.Connection, str], str | None]


def _household(connection: sa.Connection, household_id: str) -> str:

    found = connection.execute(
        sa.select(t.households.c.household_id).where(t.households.c.household_id == household_id)
    ).scalar()
    if found is None:
        raise NotFoundError(f"no household {household_id}")
    return str(found)


def _account(connection: sa.Connection, account_id: str) -> str:

    found = connection.execute(
        sa.select(t.accounts.c.household_id).where(t.accounts.c.account_id == account_id)
    ).scalar()
    if found is None:
        raise NotFoundError(f"no account {account_id}")
    return str(found)


OWNERS: dict[str, tuple[str, Owner]] = {
    "household_id": ("household", _household),
    "account_id": ("account", _account),
}


class NoRuleError(RuntimeError):
    """A route names an object by a path parameter this module has no rule for."""


def guard(request: Request, who: PrincipalDep, engine: EngineDep) -> Principal:
    """The caller, once every object the path names is theirs to see (else 404)."""
    if request.path_params:
        with engine.connect() as connection:
            for name, value in request.path_params.items():
                rule = OWNERS.get(name)
                if rule is None:
                    raise NoRuleError(f"no scoping rule for the path parameter {name!r}")
                label, owner = rule
                household = owner(connection, str(value))
                if not who.scope.sees(household):
                    raise NotFoundError(f"no {label} {value}")
    return who


ScopedDep = Annotated[Principal, Depends(guard)]


def scoped_router(**kwargs: object) -> APIRouter:
    """A router whose every route is guarded."""
    return APIRouter(dependencies=[Depends(guard)], **kwargs)  # type: ignore[arg-type]
