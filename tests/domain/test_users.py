"""Who sees which households: the one rule every query of the service is scoped by."""

from __future__ import annotations

import pytest

from poise.domain.errors import ValidationError
from poise.domain.users import FIRM_WIDE, Role, Scope, User, scope_of


def user(role: Role, **kw: object) -> User:
    return User("u1", "pat", "Pat", role, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("role", sorted(FIRM_WIDE))
def test_scope_when_the_role_is_firm_wide_then_every_household(role: Role) -> None:
    scope = scope_of(user(role))
    assert scope.firm
    assert scope.sees("H0001")
    assert scope.sees("H9999")


def test_scope_when_an_adviser_then_only_the_households_assigned() -> None:
    scope = scope_of(user(Role.ADVISER, households=frozenset({"H1", "H2"})))
    assert not scope.firm
    assert scope.sees("H1")
    assert scope.sees("H2")
    assert not scope.sees("H3")
    assert scope.only(["H3", "H2", "H1"]) == ["H2", "H1"]


def test_scope_when_an_adviser_has_no_households_then_none() -> None:
    assert scope_of(user(Role.ADVISER)).only(["H1"]) == []


def test_scope_when_a_client_then_their_own_household_only() -> None:
    scope = scope_of(user(Role.CLIENT, household_id="H7"))
    assert scope.sees("H7")
    assert not scope.sees("H1")


def test_scope_when_an_object_has_no_household_then_any_signed_in_user_sees_it() -> None:
    assert Scope().sees(None)  # a security, a price, a model


@pytest.mark.parametrize(
    ("role", "kw", "why"),
    [
        (Role.CLIENT, {}, "needs their household"),
        (Role.ADVISER, {"household_id": "H1"}, "only a client"),
        (Role.OPERATIONS, {"households": frozenset({"H1"})}, "only an adviser"),
    ],
)
def test_user_when_the_role_does_not_fit_then_refused(
    role: Role, kw: dict[str, object], why: str
) -> None:
    with pytest.raises(ValidationError, match=why):
        user(role, **kw)
