"""Who signs in: users and their roles, the households assigned to each adviser, what
sign-in keeps (a password's hash, wrong passwords in a row, a lock-out), personal
access tokens, and the service's own secrets.

Usernames are kept lower-cased (:func:`~poise.domain.users.username_of`): ``Pat`` and
``pat`` are one user. A user's household, and an adviser's, must be in the store:
one that is not is a :class:`NotFoundError`, before anything is written. A token's
secret is never kept, only its hash; how a password or a secret is hashed is the
API's business (:mod:`poise.api.security`), not the store's.

Every function works in the caller's transaction; those that write want one begun
with ``writes=True``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from poise.domain.errors import ConflictError, NotFoundError, ValidationError
from poise.domain.users import Role, User, username_of
from poise.store import tables as t

__all__ = [
    "ApiToken",
    "Credentials",
    "add_token",
    "add_user",
    "assign_households",
    "clear_failed_logins",
    "credentials",
    "credentials_of",
    "disable_user",
    "lock_until",
    "record_failed_login",
    "rehash_password",
    "require_households",
    "revoke_token",
    "service_secret",
    "set_assignments",
    "set_password_hash",
    "set_role",
    "token",
    "tokens_of",
    "touch_token",
    "user",
    "user_by_username",
    "user_named",
    "users",
]

_CHUNK = 500  # ids in one IN list


@dataclass(frozen=True, slots=True)
class Credentials:
    """What signing in checks, beside the user: the password's hash (None: the user
    signs in only through the firm's identity provider), how many wrong passwords in a
    row, and when the password was last set (a session issued before it is over)."""

    user: User
    password_hash: str | None
    failed_logins: int
    password_changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A personal access token as kept: never its secret, only the secret's hash."""

    token_id: str
    user_id: str
    name: str
    secret_hash: str  # sha256 of the secret, in hex
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime | None  # None: never
    revoked_at: datetime | None
    last_used_at: datetime | None

    def live(self, now: datetime) -> bool:
        """Whether the token still holds at ``now``: neither revoked nor expired."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def _now(at: datetime | None) -> datetime:
    return at if at is not None else datetime.now(UTC)


# ── users ────────────────────────────────────────────────────────────────────


def require_households(connection: sa.Connection, *, household_ids: Iterable[str]) -> None:
    """A :class:`NotFoundError` naming those of ``household_ids`` the store does not
    hold, if any."""
    wanted = sorted(set(household_ids))
    h = t.households
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        query = sa.select(h.c.household_id).where(
            h.c.household_id.in_(wanted[start : start + _CHUNK])
        )
        found.update(connection.execute(query).scalars())
    missing = [household for household in wanted if household not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise NotFoundError(f"no household {shown} in the store (load households first)")


# The statements that find who is asking, on every request the API answers, built
# once: building one (and its cache key) costs more than the database takes to answer.
_USER = sa.select(t.users).where(t.users.c.user_id == sa.bindparam("user_id"))
_ASSIGNED = sa.select(t.user_households.c.household_id).where(
    t.user_households.c.user_id == sa.bindparam("user_id")
)
_TOKEN = sa.select(t.api_tokens).where(t.api_tokens.c.token_id == sa.bindparam("token_id"))


def _assigned(connection: sa.Connection, user_ids: Collection[str]) -> dict[str, frozenset[str]]:
    """The households assigned to each of ``user_ids`` (only those with any)."""
    if len(user_ids) == 1:
        (user_id,) = user_ids
        one = frozenset(connection.execute(_ASSIGNED, {"user_id": user_id}).scalars())
        return {user_id: one} if one else {}
    uh = t.user_households
    ids = sorted(user_ids)
    found: dict[str, set[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        query = sa.select(uh.c.user_id, uh.c.household_id).where(
            uh.c.user_id.in_(ids[start : start + _CHUNK])
        )
        for user_id, household_id in connection.execute(query):
            found.setdefault(user_id, set()).add(household_id)
    return {user_id: frozenset(households) for user_id, households in found.items()}


def _user(row: sa.Row[Any], households: frozenset[str]) -> User:
    return User(
        user_id=row.user_id,
        username=row.username,
        name=row.name,
        role=Role(row.role),
        household_id=row.household_id,
        households=households,
        disabled=row.disabled,
        locked_until=row.locked_until,
    )


def _row(connection: sa.Connection, where: sa.ColumnElement[bool]) -> sa.Row[Any] | None:
    return connection.execute(sa.select(t.users).where(where)).first()


def add_user(
    connection: sa.Connection,
    *,
    username: str,
    role: Role,
    name: str = "",
    household_id: str | None = None,
    households: Collection[str] = (),
    password_hash: str | None = None,
    created_at: datetime | None = None,
) -> User:
    """Keep a new user and return them, with a new id (a uuid4, in hex). ``name``: the
    username unless given; ``household_id``: a client's own household; ``households``:
    those assigned to an adviser; ``password_hash``: None for a user who signs in only
    through the firm's identity provider.

    A username kept already is a :class:`ConflictError`; a household the store does
    not hold, a :class:`NotFoundError`; a role without what it needs (a client without
    a household), a :class:`ValidationError`. The caller's transaction goes on."""
    created_at = _now(created_at)
    new = User(
        user_id=uuid.uuid4().hex,
        username=username_of(username),
        name=name.strip() or username.strip(),
        role=role,
        household_id=household_id or None,
        households=frozenset(households),
    )
    if user_by_username(connection, username=new.username) is not None:
        raise ConflictError(f"there is a user {new.username} already")
    require_households(
        connection, household_ids=[*new.households, *filter(None, [new.household_id])]
    )
    try:
        with connection.begin_nested():  # a failed insert leaves the transaction usable
            connection.execute(
                sa.insert(t.users).values(
                    user_id=new.user_id,
                    username=new.username,
                    name=new.name,
                    role=new.role.value,
                    household_id=new.household_id,
                    password_hash=password_hash,
                    disabled=False,
                    failed_logins=0,
                    locked_until=None,
                    created_at=created_at,
                    password_changed_at=created_at if password_hash is not None else None,
                )
            )
    except sa.exc.IntegrityError:  # added meanwhile by someone else
        raise ConflictError(f"there is a user {new.username} already") from None
    if new.households:
        connection.execute(
            sa.insert(t.user_households),
            [{"user_id": new.user_id, "household_id": h} for h in sorted(new.households)],
        )
    return new


def user(connection: sa.Connection, *, user_id: str) -> User:
    """One user, by id (an adviser with their households)."""
    row = connection.execute(_USER, {"user_id": user_id}).first()
    if row is None:
        raise NotFoundError(f"no user with id {user_id!r}")
    return _user(row, _assigned(connection, [user_id]).get(user_id, frozenset()))


def user_by_username(connection: sa.Connection, *, username: str) -> User | None:
    """The user of ``username`` (in any case), or None: no such user."""
    row = _row(connection, t.users.c.username == username.strip().lower())
    if row is None:
        return None
    return _user(row, _assigned(connection, [row.user_id]).get(row.user_id, frozenset()))


def user_named(connection: sa.Connection, *, username: str) -> User:
    """The user of ``username`` (in any case); a :class:`NotFoundError` if none."""
    found = user_by_username(connection, username=username)
    if found is None:
        raise NotFoundError(f"no user {username.strip().lower()}")
    return found


def users(connection: sa.Connection) -> list[User]:
    """Every user, in order of username."""
    rows = connection.execute(sa.select(t.users).order_by(t.users.c.username)).all()
    assigned = _assigned(connection, [row.user_id for row in rows])
    return [_user(row, assigned.get(row.user_id, frozenset())) for row in rows]


def credentials(connection: sa.Connection, *, username: str) -> Credentials | None:
    """What signing in as ``username`` (in any case) checks, or None: no such user."""
    return _credentials(
        connection, _row(connection, t.users.c.username == username.strip().lower())
    )


def credentials_of(connection: sa.Connection, *, user_id: str) -> Credentials | None:
    """What an access token of the user ``user_id`` is checked against, or None: no
    such user."""
    return _credentials(connection, connection.execute(_USER, {"user_id": user_id}).first())


def _credentials(connection: sa.Connection, row: sa.Row[Any] | None) -> Credentials | None:
    if row is None:
        return None
    return Credentials(
        user=_user(row, _assigned(connection, [row.user_id]).get(row.user_id, frozenset())),
        password_hash=row.password_hash,
        failed_logins=row.failed_logins,
        password_changed_at=row.password_changed_at,
    )


def _update(connection: sa.Connection, user_id: str, **values: Any) -> None:
    changed = connection.execute(
        sa.update(t.users).where(t.users.c.user_id == user_id).values(**values)
    ).rowcount
    if not changed:
        raise NotFoundError(f"no user with id {user_id!r}")


def set_password_hash(
    connection: sa.Connection,
    *,
    user_id: str,
    password_hash: str | None,
    changed_at: datetime | None = None,
) -> None:
    """A new password (its hash; None: none, sign-in only through the identity
    provider): kept with when it changed, so that sessions issued before are over, and
    the wrong passwords counted and any lock-out cleared."""
    _update(
        connection,
        user_id,
        password_hash=password_hash,
        password_changed_at=_now(changed_at),
        failed_logins=0,
        locked_until=None,
    )


def rehash_password(connection: sa.Connection, *, user_id: str, password_hash: str) -> None:
    """The same password hashed anew (the hasher's parameters were raised since it was
    set): sessions go on, unlike :func:`set_password_hash`."""
    _update(connection, user_id, password_hash=password_hash)


def set_role(
    connection: sa.Connection,
    *,
    user_id: str,
    role: Role,
    household_id: str | None = None,
    households: Collection[str] = (),
) -> User:
    """Give the user ``role``, with what it needs: a client their household, an adviser
    the households assigned (replacing any assigned before)."""
    old = user(connection, user_id=user_id)
    new = User(
        user_id=old.user_id,
        username=old.username,
        name=old.name,
        role=role,
        household_id=household_id or None,
        households=frozenset(households),
        disabled=old.disabled,
        locked_until=old.locked_until,
    )
    require_households(
        connection, household_ids=[*new.households, *filter(None, [new.household_id])]
    )
    _update(connection, user_id, role=new.role.value, household_id=new.household_id)
    _replace_assignments(connection, user_id, new.households)
    return new


def _replace_assignments(
    connection: sa.Connection, user_id: str, households: frozenset[str]
) -> None:
    uh = t.user_households
    connection.execute(sa.delete(uh).where(uh.c.user_id == user_id))
    if households:
        connection.execute(
            sa.insert(uh), [{"user_id": user_id, "household_id": h} for h in sorted(households)]
        )


def _adviser(connection: sa.Connection, user_id: str) -> User:
    found = user(connection, user_id=user_id)
    if found.role is not Role.ADVISER:
        raise ValidationError(
            f"only an adviser is assigned households; {found.username} is {found.role.value}"
        )
    return found


def assign_households(
    connection: sa.Connection, *, user_id: str, households: Collection[str]
) -> User:
    """Assign ``households`` to an adviser, beside those assigned already."""
    adviser = _adviser(connection, user_id)
    require_households(connection, household_ids=households)
    new = frozenset(households) - adviser.households
    if new:
        connection.execute(
            sa.insert(t.user_households),
            [{"user_id": user_id, "household_id": h} for h in sorted(new)],
        )
    return user(connection, user_id=user_id)


def set_assignments(
    connection: sa.Connection, *, user_id: str, households: Collection[str]
) -> User:
    """Assign an adviser exactly ``households``: any other is taken away."""
    _adviser(connection, user_id)
    require_households(connection, household_ids=households)
    _replace_assignments(connection, user_id, frozenset(households))
    return user(connection, user_id=user_id)


def record_failed_login(connection: sa.Connection, *, user_id: str) -> int:
    """One more wrong password for the user; how many in a row now. The count is raised
    in the database (``failed_logins + 1``), so two guesses at once both count."""
    u = t.users
    _update(connection, user_id, failed_logins=u.c.failed_logins + 1)
    count: int = connection.execute(
        sa.select(u.c.failed_logins).where(u.c.user_id == user_id)
    ).scalar_one()
    return count


def lock_until(connection: sa.Connection, *, user_id: str, until: datetime) -> None:
    """Refuse the user's sign-in until ``until``, even with the right password."""
    _update(connection, user_id, locked_until=until)


def clear_failed_logins(connection: sa.Connection, *, user_id: str) -> None:
    """Signed in: no wrong passwords in a row, and no lock-out."""
    _update(connection, user_id, failed_logins=0, locked_until=None)


def disable_user(connection: sa.Connection, *, user_id: str, disabled: bool = True) -> None:
    """Refuse the user everything (sign-in, sessions, tokens) — or, with
    ``disabled=False``, let them back in. Users are disabled, never deleted: the audit
    ledger names them."""
    _update(connection, user_id, disabled=disabled)


# ── personal access tokens ───────────────────────────────────────────────────


def _scopes_text(scopes: Collection[str]) -> str:
    if not scopes or any(not s or s.split() != [s] for s in scopes):
        raise ValidationError("a token needs its scopes, each one word")
    return " ".join(sorted(set(scopes)))


def _token(row: sa.Row[Any]) -> ApiToken:
    return ApiToken(
        token_id=row.token_id,
        user_id=row.user_id,
        name=row.name,
        secret_hash=row.secret_hash,
        scopes=frozenset(row.scopes.split()),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def add_token(
    connection: sa.Connection,
    *,
    user_id: str,
    token_id: str,
    secret_hash: str,
    name: str,
    scopes: Collection[str],
    expires_at: datetime | None = None,
    created_at: datetime | None = None,
) -> ApiToken:
    """Keep a personal access token of the user: its id, the hash of its secret (never
    the secret), what it is for, its scopes, and when it expires (None: never)."""
    user(connection, user_id=user_id)  # a NotFoundError, not a foreign key's complaint
    created_at = _now(created_at)
    if expires_at is not None and expires_at <= created_at:
        raise ValidationError("a token expires after it is made")
    row = {
        "token_id": token_id,
        "user_id": user_id,
        "name": name.strip(),
        "secret_hash": secret_hash,
        "scopes": _scopes_text(scopes),
        "created_at": created_at,
        "expires_at": expires_at,
        "revoked_at": None,
        "last_used_at": None,
    }
    try:
        with connection.begin_nested():
            connection.execute(sa.insert(t.api_tokens).values(**row))
    except sa.exc.IntegrityError:
        raise ConflictError(f"there is a token {token_id} already") from None
    return token(connection, token_id=token_id)


def token(connection: sa.Connection, *, token_id: str) -> ApiToken:
    """One token, by id."""
    row = connection.execute(_TOKEN, {"token_id": token_id}).first()
    if row is None:
        raise NotFoundError(f"no token {token_id!r}")
    return _token(row)


def revoke_token(
    connection: sa.Connection, *, token_id: str, at: datetime | None = None
) -> ApiToken:
    """Revoke the token from ``at`` (default now): it no longer holds. A token revoked
    already keeps the time it was first revoked."""
    a = t.api_tokens
    connection.execute(
        sa.update(a)
        .where((a.c.token_id == token_id) & a.c.revoked_at.is_(None))
        .values(revoked_at=_now(at))
    )
    return token(connection, token_id=token_id)


def touch_token(connection: sa.Connection, *, token_id: str, at: datetime | None = None) -> None:
    """The token was used at ``at`` (default now)."""
    a = t.api_tokens
    changed = connection.execute(
        sa.update(a).where(a.c.token_id == token_id).values(last_used_at=_now(at))
    ).rowcount
    if not changed:
        raise NotFoundError(f"no token {token_id!r}")


def tokens_of(connection: sa.Connection, *, user_id: str) -> list[ApiToken]:
    """The user's tokens, revoked and expired ones too, the newest first."""
    a = t.api_tokens
    query = sa.select(a).where(a.c.user_id == user_id).order_by(a.c.created_at.desc(), a.c.token_id)
    return [_token(row) for row in connection.execute(query)]


# ── the service's secrets ────────────────────────────────────────────────────


def service_secret(connection: sa.Connection, *, name: str, make: Callable[[], str]) -> str:
    """The service's secret ``name`` (a signing key), made with ``make`` and kept the
    first time it is asked for, so that every worker and every restart uses the same.

    Two workers asking at once for one not yet made both try to keep theirs; the
    database keeps the first (an insert that does nothing if the name is there) and
    both read back that one."""
    s = t.service_secrets
    query = sa.select(s.c.value).where(s.c.name == name)
    value = connection.execute(query).scalar_one_or_none()
    if value is not None:
        return str(value)
    row = {"name": name, "value": make(), "created_at": datetime.now(UTC)}
    if connection.dialect.name == "postgresql":
        connection.execute(postgresql.insert(s).values(**row).on_conflict_do_nothing())
    else:
        connection.execute(sqlite.insert(s).values(**row).on_conflict_do_nothing())
    return str(connection.execute(query).scalar_one())
