"""The demo's people: who can sign in to a demo firm's pages and API.

An operations user who sees the firm, an adviser with the first households, and the
client of the first household — each with a new random password, shown once by the
command that made them. A demo built again (``--reset``) makes them again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from poise.api.security import hash_password
from poise.domain.users import Role
from poise.store import repo

__all__ = ["DemoUser", "make_demo_users"]

ADVISED = 5  # households the demo adviser is assigned


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    role: Role
    password: str
    sees: str  # in words


def make_demo_users(engine: sa.Engine) -> list[DemoUser]:
    """The demo's users, added to the store (any already there are left as they are)."""
    with engine.execution_options(writes=True).begin() as connection:
        households = [h.household_id for h in repo.households(connection)]
        if not households:
            return []
        wanted = [
            ("ops", Role.OPERATIONS, {}, "the whole firm"),
            ("pm", Role.PORTFOLIO_MANAGER, {}, "the whole firm; approves proposals"),
            ("cio", Role.PORTFOLIO_MANAGER, {}, "the whole firm; the second approver"),
            ("adviser", Role.ADVISER, {"households": households[:ADVISED]},
             f"households {', '.join(households[:ADVISED])}"),
            ("client", Role.CLIENT, {"household_id": households[0]},
             f"household {households[0]} only"),
        ]  # fmt: skip
        made = []
        for username, role, kw, sees in wanted:
            if repo.user_by_username(connection, username=username) is not None:
                continue
            password = secrets.token_urlsafe(12)
            repo.add_user(
                connection, username=username, role=role, name=f"Demo {username}",
                password_hash=hash_password(password), **kw,  # type: ignore[arg-type]
            )  # fmt: skip
            made.append(DemoUser(username, role, password, sees))
    return made
