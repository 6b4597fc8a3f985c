"""The people who use poise, their roles, and which households each may see.

Who sees what is one pure rule, :func:`scope_of`, that every query of the service is
scoped by:

- operations, compliance, portfolio managers and admins see the whole firm;
- an adviser sees the households assigned to them, and nothing else;
- a client sees their own household only.

What each role may *do* (approve, release, manage users) is the stages' business; this
module says only what each may see.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from poise.domain.errors import ValidationError

__all__ = [
    "FIRM_WIDE",
    "LOADERS",
    "REBALANCERS",
    "RUNNERS",
    "Role",
    "Scope",
    "User",
    "scope_of",
    "username_of",
]


class Role(enum.StrEnum):
    ADVISER = "adviser"
    PORTFOLIO_MANAGER = "portfolio_manager"
    OPERATIONS = "operations"
    COMPLIANCE = "compliance"
    ADMIN = "admin"
    CLIENT = "client"


FIRM_WIDE = frozenset(
    {Role.PORTFOLIO_MANAGER, Role.OPERATIONS, Role.COMPLIANCE, Role.ADMIN}
)  # roles that see every household

# What a role may do, beyond seeing. Compliance reviews and an admin manages users:
# neither proposes trades (approving them comes with the approvals).
REBALANCERS = frozenset(
    {Role.ADVISER, Role.PORTFOLIO_MANAGER, Role.OPERATIONS}
)  # rebalance an account or a household they see
RUNNERS = frozenset({Role.PORTFOLIO_MANAGER, Role.OPERATIONS})  # launch firm-wide runs
LOADERS = frozenset({Role.OPERATIONS, Role.ADMIN})  # load files into the store


USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,63}")


def username_of(text: str) -> str:
    """A username as poise keeps it: trimmed and lower-cased, so that ``Pat`` and ``pat``
    are one user; up to 64 letters, digits and ``._@+-``, starting with a letter or a
    digit (an e-mail address will do)."""
    username = text.strip().lower()
    if not USERNAME.fullmatch(username):
        raise ValidationError(
            f"{text!r} is not a username: up to 64 letters, digits and . _ @ + -,"
            " starting with a letter or a digit"
        )
    return username


@dataclass(frozen=True, slots=True)
class User:
    """A person who signs in. ``household_id``: a client's own household;
    ``households``: the households assigned to an adviser."""

    user_id: str
    username: str
    name: str
    role: Role
    household_id: str | None = None
    households: frozenset[str] = frozenset()
    disabled: bool = False
    locked_until: datetime | None = None

    def __post_init__(self) -> None:
        if not self.username.strip():
            raise ValidationError("a user needs a username")
        if self.role is Role.CLIENT and not self.household_id:
            raise ValidationError(f"client {self.username} needs their household")
        if self.role is not Role.CLIENT and self.household_id:
            raise ValidationError(f"only a client has a household of their own ({self.username})")
        if self.role is not Role.ADVISER and self.households:
            raise ValidationError(f"only an adviser is assigned households ({self.username})")


@dataclass(frozen=True, slots=True)
class Scope:
    """The households a user may see: every one (``firm``), or exactly ``households``."""

    firm: bool = False
    households: frozenset[str] = field(default_factory=frozenset)

    def sees(self, household_id: str | None) -> bool:
        """Whether an object of ``household_id`` may be shown (None: an object of no
        household — a security, a price, a model — which any signed-in user may see)."""
        return household_id is None or self.firm or household_id in self.households

    def only(self, household_ids: Collection[str]) -> list[str]:
        """``household_ids`` less those out of scope, in their order."""
        return [h for h in household_ids if self.sees(h)]


def scope_of(user: User) -> Scope:
    """What ``user`` may see: see the module."""
    if user.role in FIRM_WIDE:
        return Scope(firm=True)
    if user.role is Role.ADVISER:
        return Scope(households=user.households)
    return Scope(households=frozenset({user.household_id}) if user.household_id else frozenset())
