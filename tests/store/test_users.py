"""Who signs in, in the store, on both databases: users of each role and what each sees,
an adviser's households, what sign-in keeps (wrong passwords, lock-outs, a new
password), personal access tokens, and the service's own secrets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
import sqlalchemy as sa

from poise.domain.errors import ConflictError, NotFoundError, ValidationError
from poise.domain.users import Role, User, scope_of
from poise.store import repo
from poise.store import tables as t

NOW = datetime(2026, 12, 9, 9, 30, tzinfo=UTC)
T = TypeVar("T")
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"  # what is kept; never checked here


@pytest.fixture
def firm(engine: sa.Engine) -> sa.Engine:
    """A store holding households H1, H2 and H3."""
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.households),
            [{"household_id": h, "name": f"household {h}"} for h in ("H1", "H2", "H3")],
        )
    return engine


def write(engine: sa.Engine, act: Callable[[sa.Connection], T]) -> T:
    with engine.execution_options(writes=True).begin() as connection:
        return act(connection)


def read(engine: sa.Engine, act: Callable[[sa.Connection], T]) -> T:
    with engine.connect() as connection:
        return act(connection)


def add(engine: sa.Engine, username: str, role: Role, **kw: object) -> User:
    return write(
        engine,
        lambda c: repo.add_user(c, username=username, role=role, created_at=NOW, **kw),  # type: ignore[arg-type]
    )


def test_add_user_when_each_role_is_added_then_each_reads_back_seeing_what_its_role_allows(
    firm: sa.Engine,
) -> None:
    admin = add(firm, "Admin", Role.ADMIN, name="Ada Admin", password_hash=HASH)
    ops = add(firm, "ops", Role.OPERATIONS)
    adviser = add(firm, "pat", Role.ADVISER, households=["H1", "H2"])
    client = add(firm, "cleo", Role.CLIENT, household_id="H3")
    assert (client.role, client.household_id) == (Role.CLIENT, "H3")

    assert admin.username == "admin"  # kept lower-cased
    assert admin.name == "Ada Admin"
    assert ops.name == "ops"  # the username, when no name is given
    assert len(admin.user_id) == 32
    assert int(admin.user_id, 16) >= 0
    assert read(firm, lambda c: repo.user(c, user_id=adviser.user_id)) == adviser
    assert read(firm, lambda c: repo.user_by_username(c, username=" PAT ")) == adviser
    assert read(firm, lambda c: repo.user_by_username(c, username="nobody")) is None
    assert [u.username for u in read(firm, repo.users)] == ["admin", "cleo", "ops", "pat"]

    everyone = {u.username: scope_of(u) for u in read(firm, repo.users)}
    assert everyone["admin"].firm
    assert everyone["ops"].firm
    assert everyone["pat"].households == {"H1", "H2"}
    assert everyone["cleo"].households == {"H3"}

    kept = read(firm, lambda c: repo.credentials(c, username="ADMIN"))
    assert kept is not None
    assert (kept.password_hash, kept.failed_logins) == (HASH, 0)
    assert kept.password_changed_at == NOW
    without = read(firm, lambda c: repo.credentials(c, username="ops"))
    assert without is not None
    assert (without.password_hash, without.password_changed_at) == (None, None)
    assert read(firm, lambda c: repo.credentials(c, username="nobody")) is None


def test_add_user_when_the_username_is_taken_in_any_case_then_a_conflict_and_the_rest_goes_on(
    firm: sa.Engine,
) -> None:
    add(firm, "pat", Role.OPERATIONS)
    with firm.execution_options(writes=True).begin() as connection:
        with pytest.raises(ConflictError, match="there is a user pat already"):
            repo.add_user(connection, username="PAT", role=Role.ADMIN)
        repo.add_user(connection, username="sam", role=Role.ADMIN)
    assert [u.username for u in read(firm, repo.users)] == ["pat", "sam"]


@pytest.mark.parametrize(
    ("role", "given", "message"),
    [
        (Role.CLIENT, {}, "client cleo needs their household"),
        (Role.OPERATIONS, {"household_id": "H1"}, "only a client has a household"),
        (Role.COMPLIANCE, {"households": ["H1"]}, "only an adviser is assigned households"),
    ],
)
def test_add_user_when_the_role_lacks_what_it_needs_then_refused(
    firm: sa.Engine, role: Role, given: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        add(firm, "cleo", role, **given)
    assert read(firm, repo.users) == []


def test_add_user_when_a_household_is_not_in_the_store_then_not_found_and_nothing_kept(
    firm: sa.Engine,
) -> None:
    with pytest.raises(NotFoundError, match="no household H8, H9 in the store"):
        add(firm, "pat", Role.ADVISER, households=["H1", "H9", "H8"])
    with pytest.raises(NotFoundError, match="no household H9"):
        add(firm, "cleo", Role.CLIENT, household_id="H9")
    assert read(firm, repo.users) == []


def test_add_user_when_the_username_is_not_one_then_refused(firm: sa.Engine) -> None:
    for bad in ("", "   ", "-pat", "pat smith", "x" * 65):
        with pytest.raises(ValidationError, match="is not a username"):
            add(firm, bad, Role.ADMIN)
    assert add(firm, "Pat.Smith+ops@firm.example", Role.ADMIN).username == (
        "pat.smith+ops@firm.example"
    )


def test_assign_when_an_adviser_gains_households_then_they_are_added_and_replace_takes_away(
    firm: sa.Engine,
) -> None:
    pat = add(firm, "pat", Role.ADVISER, households=["H1"])
    gained = write(
        firm, lambda c: repo.assign_households(c, user_id=pat.user_id, households=["H2", "H1"])
    )
    assert gained.households == {"H1", "H2"}
    exactly = write(firm, lambda c: repo.set_assignments(c, user_id=pat.user_id, households=["H3"]))
    assert exactly.households == {"H3"}
    assert read(firm, lambda c: repo.user(c, user_id=pat.user_id)).households == {"H3"}
    with pytest.raises(NotFoundError, match="no household H9"):
        write(firm, lambda c: repo.assign_households(c, user_id=pat.user_id, households=["H9"]))

    ops = add(firm, "ops", Role.OPERATIONS)
    with pytest.raises(ValidationError, match="only an adviser is assigned households; ops is"):
        write(firm, lambda c: repo.assign_households(c, user_id=ops.user_id, households=["H1"]))


def test_set_role_when_an_adviser_moves_to_operations_then_their_households_go_with_the_role(
    firm: sa.Engine,
) -> None:
    pat = add(firm, "pat", Role.ADVISER, households=["H1", "H2"])
    moved = write(firm, lambda c: repo.set_role(c, user_id=pat.user_id, role=Role.OPERATIONS))
    assert (moved.role, moved.households) == (Role.OPERATIONS, frozenset())
    assert read(firm, lambda c: repo.user(c, user_id=pat.user_id)) == moved
    assert read(firm, lambda c: c.execute(sa.select(t.user_households)).all()) == []
    client = write(
        firm,
        lambda c: repo.set_role(c, user_id=pat.user_id, role=Role.CLIENT, household_id="H2"),
    )
    assert (client.role, client.household_id) == (Role.CLIENT, "H2")


def test_record_failed_login_when_wrong_passwords_follow_then_counted_locked_and_cleared(
    firm: sa.Engine,
) -> None:
    pat = add(firm, "pat", Role.OPERATIONS, password_hash=HASH)
    counts = [
        write(firm, lambda c: repo.record_failed_login(c, user_id=pat.user_id)) for _ in range(5)
    ]
    assert counts == [1, 2, 3, 4, 5]
    until = NOW + timedelta(minutes=15)
    write(firm, lambda c: repo.lock_until(c, user_id=pat.user_id, until=until))
    assert read(firm, lambda c: repo.user(c, user_id=pat.user_id)).locked_until == until

    write(firm, lambda c: repo.clear_failed_logins(c, user_id=pat.user_id))
    kept = read(firm, lambda c: repo.credentials(c, username="pat"))
    assert kept is not None
    assert (kept.failed_logins, kept.user.locked_until) == (0, None)
    with pytest.raises(NotFoundError, match="no user with id 'nope'"):
        write(firm, lambda c: repo.record_failed_login(c, user_id="nope"))


def test_set_password_hash_when_a_new_one_is_set_then_the_lock_lifts_and_a_rehash_keeps_its_time(
    firm: sa.Engine,
) -> None:
    pat = add(firm, "pat", Role.OPERATIONS, password_hash=HASH)
    write(firm, lambda c: repo.record_failed_login(c, user_id=pat.user_id))
    write(firm, lambda c: repo.lock_until(c, user_id=pat.user_id, until=NOW + timedelta(hours=1)))
    later = NOW + timedelta(days=3)
    write(
        firm,
        lambda c: repo.set_password_hash(
            c, user_id=pat.user_id, password_hash="new", changed_at=later
        ),
    )
    kept = read(firm, lambda c: repo.credentials(c, username="pat"))
    assert kept is not None
    assert (kept.password_hash, kept.password_changed_at) == ("new", later)
    assert (kept.failed_logins, kept.user.locked_until) == (0, None)

    write(firm, lambda c: repo.rehash_password(c, user_id=pat.user_id, password_hash="stronger"))
    rehashed = read(firm, lambda c: repo.credentials(c, username="pat"))
    assert rehashed is not None
    assert (rehashed.password_hash, rehashed.password_changed_at) == ("stronger", later)


def test_disable_user_when_disabled_then_kept_disabled_until_enabled(firm: sa.Engine) -> None:
    pat = add(firm, "pat", Role.OPERATIONS)
    write(firm, lambda c: repo.disable_user(c, user_id=pat.user_id))
    assert read(firm, lambda c: repo.user(c, user_id=pat.user_id)).disabled
    write(firm, lambda c: repo.disable_user(c, user_id=pat.user_id, disabled=False))
    assert not read(firm, lambda c: repo.user(c, user_id=pat.user_id)).disabled
    with pytest.raises(NotFoundError, match="no user pat2"):
        read(firm, lambda c: repo.user_named(c, username="pat2"))


def test_tokens_when_made_used_and_revoked_then_kept_as_such_never_with_their_secret(
    firm: sa.Engine,
) -> None:
    pat = add(firm, "pat", Role.OPERATIONS)
    first = write(
        firm,
        lambda c: repo.add_token(
            c,
            user_id=pat.user_id,
            token_id="a" * 32,
            secret_hash="0" * 64,
            name=" nightly export ",
            scopes=["read"],
            created_at=NOW,
            expires_at=NOW + timedelta(days=90),
        ),
    )
    assert first == repo.ApiToken(
        token_id="a" * 32,
        user_id=pat.user_id,
        name="nightly export",
        secret_hash="0" * 64,
        scopes=frozenset({"read"}),
        created_at=NOW,
        expires_at=NOW + timedelta(days=90),
        revoked_at=None,
        last_used_at=None,
    )
    assert first.live(NOW + timedelta(days=89))
    assert not first.live(NOW + timedelta(days=90))
    second = write(
        firm,
        lambda c: repo.add_token(
            c,
            user_id=pat.user_id,
            token_id="b" * 32,
            secret_hash="1" * 64,
            name="orders",
            scopes=["write", "read"],
            created_at=NOW + timedelta(hours=1),
        ),
    )
    assert second.scopes == {"read", "write"}
    stored = read(firm, lambda c: c.execute(sa.select(t.api_tokens.c.scopes)).scalars().all())
    assert sorted(stored) == ["read", "read write"]

    used = NOW + timedelta(hours=2)
    write(firm, lambda c: repo.touch_token(c, token_id="a" * 32, at=used))
    assert read(firm, lambda c: repo.token(c, token_id="a" * 32)).last_used_at == used

    revoked = write(firm, lambda c: repo.revoke_token(c, token_id="b" * 32, at=used))
    again = write(firm, lambda c: repo.revoke_token(c, token_id="b" * 32, at=used + timedelta(1)))
    assert revoked.revoked_at == again.revoked_at == used  # the first time it was revoked
    assert not again.live(used)
    assert [k.token_id for k in read(firm, lambda c: repo.tokens_of(c, user_id=pat.user_id))] == [
        "b" * 32,
        "a" * 32,
    ]

    with pytest.raises(ConflictError):
        write(
            firm,
            lambda c: repo.add_token(
                c,
                user_id=pat.user_id,
                token_id="a" * 32,
                secret_hash="2" * 64,
                name="",
                scopes=["read"],
            ),
        )
    with pytest.raises(NotFoundError, match="no token 'c"):
        write(firm, lambda c: repo.revoke_token(c, token_id="c" * 32))
    with pytest.raises(NotFoundError, match="no user with id"):
        write(
            firm,
            lambda c: repo.add_token(
                c, user_id="nope", token_id="d" * 32, secret_hash="3" * 64, name="", scopes=["read"]
            ),
        )
    with pytest.raises(ValidationError, match="a token expires after it is made"):
        write(
            firm,
            lambda c: repo.add_token(
                c,
                user_id=pat.user_id,
                token_id="e" * 32,
                secret_hash="4" * 64,
                name="",
                scopes=["read"],
                created_at=NOW,
                expires_at=NOW,
            ),
        )


def test_service_secret_when_asked_twice_then_made_once_and_the_same_after(
    engine: sa.Engine,
) -> None:
    made: list[str] = []

    def make() -> str:
        made.append(f"key-{len(made)}")
        return made[-1]

    first = write(engine, lambda c: repo.service_secret(c, name="jwt", make=make))
    second = write(engine, lambda c: repo.service_secret(c, name="jwt", make=make))
    assert (first, second, made) == ("key-0", "key-0", ["key-0"])
    assert write(engine, lambda c: repo.service_secret(c, name="other", make=make)) == "key-1"


def test_service_secret_when_another_worker_keeps_one_first_then_both_use_theirs(
    engine: sa.Engine, database_url: str
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite writers take turns: a writing transaction holds the lock throughout")

    def theirs_first() -> str:  # another worker keeps its key between our read and our insert
        with engine.begin() as other:
            other.execute(
                sa.insert(t.service_secrets).values(name="jwt", value="theirs", created_at=NOW)
            )
        return "ours"

    assert (
        write(engine, lambda c: repo.service_secret(c, name="jwt", make=theirs_first)) == "theirs"
    )
    assert read(
        engine, lambda c: c.execute(sa.select(t.service_secrets.c.value)).scalars().all()
    ) == ["theirs"]
