"""``poise users``: who may sign in to the service — add them, set a password, issue and
revoke personal access tokens, assign households to an adviser, disable them.

A password is typed twice at a hidden prompt, or read from standard input with
``--password-stdin`` (one line: for scripts, never on the command line, where other
users of the machine could read it). A token is printed once: only its hash is kept.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from poise.cli.common import (
    DatabaseOption,
    JsonOption,
    _engine,
    _print_json,
    app,
    command_group,
    err,
    out,
)
from poise.domain.users import Role

if TYPE_CHECKING:
    from poise.domain.users import User
    from poise.store.repo import ApiToken

__all__ = [
    "users_add",
    "users_assign",
    "users_disable",
    "users_enable",
    "users_list",
    "users_passwd",
    "users_revoke",
    "users_token",
]

users_app = command_group("Who may sign in to the service: users, passwords and tokens.")
app.add_typer(users_app, name="users")

PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (one line) instead of prompting.",
    ),
]


def _password(username: str, *, from_stdin: bool) -> str:
    """A new password, checked against the policy, and its hash."""
    from poise.api.security import hash_password

    if from_stdin:
        plain = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():  # getpass would read it echoed, or wait for nothing
        raise typer.BadParameter(
            "no terminal to type a password at: pipe it in with --password-stdin",
            param_hint="--password-stdin",
        )
    else:
        plain = typer.prompt(
            f"password for {username}", hide_input=True, confirmation_prompt=True, err=True
        )
    return hash_password(plain, username=username)


def _user_json(
    user: User, *, password: bool | None = None, tokens: list[ApiToken] | None = None
) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "user_id": user.user_id,
        "username": user.username,
        "name": user.name,
        "role": user.role,
        "household_id": user.household_id,
        "households": user.households,
        "disabled": user.disabled,
        "locked_until": user.locked_until,
    }
    if password is not None:
        shown["password"] = password
    if tokens is not None:
        shown["tokens"] = [_token_json(token) for token in tokens]
    return shown


def _token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "token_id": token.token_id,
        "name": token.name,
        "scopes": token.scopes,
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
        "last_used_at": token.last_used_at,
    }


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Their sign-in name (kept lower-cased).")],
    role: Annotated[Role, typer.Option(help="What they do, and so what they see.")],
    name: Annotated[str, typer.Option(help="Their name as shown. Default: the username.")] = "",
    household: Annotated[
        str | None, typer.Option(help="A client's own household (a client needs one).")
    ] = None,
    assign: Annotated[
        list[str] | None,
        typer.Option("--assign", help="A household assigned to an adviser (repeat for more)."),
    ] = None,
    password_stdin: PasswordStdinOption = False,
    no_password: Annotated[
        bool,
        typer.Option(
            "--no-password",
            help="No password: the user signs in only through the firm's identity provider"
            " (OpenID Connect), or uses the tokens made for them (a script's account).",
        ),
    ] = False,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Add a user. A client needs --household; an adviser sees the households --assign
    names; the other roles see the whole firm."""
    from poise.domain.errors import ConflictError, ValidationError
    from poise.domain.users import User, username_of
    from poise.store import repo

    if password_stdin and no_password:
        raise ValidationError("--password-stdin or --no-password, not both")
    households = frozenset(assign or ())
    wanted = User(  # the role's rules, before a password is asked for
        user_id="-",
        username=username_of(username),
        name=name or username,
        role=role,
        household_id=household,
        households=households,
    )
    engine = _engine(database_url, create=True)
    with engine.connect() as connection:
        if repo.user_by_username(connection, username=wanted.username) is not None:
            raise ConflictError(f"there is a user {wanted.username} already")
        repo.require_households(connection, household_ids=[*households, *filter(None, [household])])
    hashed = None if no_password else _password(wanted.username, from_stdin=password_stdin)
    with engine.execution_options(writes=True).begin() as connection:
        added = repo.add_user(
            connection,
            username=username,
            role=role,
            name=name,
            household_id=household,
            households=households,
            password_hash=hashed,
        )
    if as_json:
        _print_json(_user_json(added, password=hashed is not None))
        return
    sees = {
        Role.CLIENT: f"household {added.household_id}",
        Role.ADVISER: f"{len(added.households)} household(s) assigned",
    }.get(added.role, "the whole firm")
    out.print(f"added {added.username} ({added.role.value}): sees {sees}")


@users_app.command("passwd")
def users_passwd(
    username: Annotated[str, typer.Argument(help="Whose password.")],
    password_stdin: PasswordStdinOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Set a user's password. It also lifts a lock-out and forgets the wrong passwords
    counted, and ends the sessions signed in with the old one."""
    from poise.store import repo

    engine = _engine(database_url)
    with engine.connect() as connection:
        user = repo.user_named(connection, username=username)
    hashed = _password(user.username, from_stdin=password_stdin)
    with engine.execution_options(writes=True).begin() as connection:
        repo.set_password_hash(connection, user_id=user.user_id, password_hash=hashed)
    out.print(f"password of {user.username} set")


@users_app.command("token")
def users_token(
    username: Annotated[str, typer.Argument(help="Whose token: it acts as them.")],
    name: Annotated[str, typer.Option(help="What it is for (shown in the list).")] = "",
    scopes: Annotated[
        str, typer.Option(help="read (GET only), or read,write (also change things).")
    ] = "read",
    expires_days: Annotated[int, typer.Option(min=0, help="Days it holds; 0: until revoked.")] = 90,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Make a personal access token for scripts (sent as "Authorization: Bearer ...").
    It is printed this once: only its hash is kept."""
    from poise.api.security import new_token, parse_scopes, token_hash
    from poise.domain.errors import ValidationError
    from poise.store import repo

    granted = parse_scopes(scopes)
    engine = _engine(database_url)
    now = datetime.now(UTC)
    token_id, secret, text = new_token()
    with engine.execution_options(writes=True).begin() as connection:
        user = repo.user_named(connection, username=username)
        if user.disabled:
            raise ValidationError(f"{user.username} is disabled: enable them first")
        kept = repo.add_token(
            connection,
            user_id=user.user_id,
            token_id=token_id,
            secret_hash=token_hash(secret),
            name=name or f"made {now:%Y-%m-%d}",
            scopes=granted,
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
            created_at=now,
        )
    if as_json:
        _print_json({"token": text, "username": user.username, **_token_json(kept)})
    else:
        out.print(text, soft_wrap=True, highlight=False)
    until = f"until {kept.expires_at:%Y-%m-%d}" if kept.expires_at else "until revoked"
    err.print(
        f"token {kept.token_id} of {user.username} ({' '.join(sorted(kept.scopes))}, {until}):"
        " copy it now — it cannot be shown again",
        soft_wrap=True,
    )


@users_app.command("list")
def users_list(as_json: JsonOption = False, database_url: DatabaseOption = None) -> None:
    """Every user: role, households, whether they may sign in, and their tokens."""
    from rich.table import Table

    from poise.store import repo

    engine = _engine(database_url)
    now = datetime.now(UTC)
    with engine.connect() as connection:
        people = repo.users(connection)
        passwords = {
            u.user_id: (found := repo.credentials(connection, username=u.username)) is not None
            and found.password_hash is not None
            for u in people
        }
        tokens = {u.user_id: repo.tokens_of(connection, user_id=u.user_id) for u in people}
    if as_json:
        _print_json(
            [_user_json(u, password=passwords[u.user_id], tokens=tokens[u.user_id]) for u in people]
        )
        return
    table = Table(title=f"users ({len(people)})")
    for column in ("username", "name", "role", "households", "status", "tokens"):
        table.add_column(column, no_wrap=column in ("username", "tokens"))
    for u in people:
        households = u.household_id or ", ".join(sorted(u.households))
        status = (
            "disabled"
            if u.disabled
            else f"locked until {u.locked_until:%H:%M} UTC"
            if u.locked_until and now < u.locked_until
            else "active"
        )
        live = [t.token_id for t in tokens[u.user_id] if t.live(now)]
        table.add_row(u.username, u.name, u.role.value, households, status, "\n".join(live))
    out.print(table)


@users_app.command("revoke")
def users_revoke(
    token: Annotated[str, typer.Argument(help="The token's id (or the whole token).")],
    database_url: DatabaseOption = None,
) -> None:
    """Revoke a personal access token: it no longer holds, from now."""
    from poise.api.security import parse_token
    from poise.store import repo

    parsed = parse_token(token)
    token_id = parsed[0] if parsed else token.strip()
    engine = _engine(database_url)
    with engine.execution_options(writes=True).begin() as connection:
        revoked = repo.revoke_token(connection, token_id=token_id)
        owner = repo.user(connection, user_id=revoked.user_id)
    out.print(f"token {revoked.token_id} of {owner.username} revoked")


@users_app.command("assign")
def users_assign(
    username: Annotated[str, typer.Argument(help="The adviser.")],
    households: Annotated[list[str], typer.Argument(help="Households to assign them.")],
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Assign exactly these: take away any others."),
    ] = False,
    as_json: JsonOption = False,
    database_url: DatabaseOption = None,
) -> None:
    """Assign households to an adviser, beside those assigned already (or, with
    --replace, instead of them)."""
    from poise.store import repo

    engine = _engine(database_url)
    with engine.execution_options(writes=True).begin() as connection:
        adviser = repo.user_named(connection, username=username)
        change = repo.set_assignments if replace else repo.assign_households
        adviser = change(connection, user_id=adviser.user_id, households=households)
    if as_json:
        _print_json(_user_json(adviser))
        return
    out.print(
        f"{adviser.username} is assigned {len(adviser.households)} household(s): "
        + ", ".join(sorted(adviser.households))
    )


def _set_disabled(username: str, database_url: str | None, *, disabled: bool) -> None:
    from poise.store import repo

    engine = _engine(database_url)
    with engine.execution_options(writes=True).begin() as connection:
        user = repo.user_named(connection, username=username)
        repo.disable_user(connection, user_id=user.user_id, disabled=disabled)
    out.print(f"{user.username} {'disabled' if disabled else 'enabled'}")


@users_app.command("disable")
def users_disable(
    username: Annotated[str, typer.Argument(help="Who.")],
    database_url: DatabaseOption = None,
) -> None:
    """Refuse a user everything from now: signing in, their sessions, their tokens.
    Users are disabled, never deleted: the audit ledger names them."""
    _set_disabled(username, database_url, disabled=True)


@users_app.command("enable")
def users_enable(
    username: Annotated[str, typer.Argument(help="Who.")],
    database_url: DatabaseOption = None,
) -> None:
    """Let a disabled user back in (their tokens not revoked meanwhile hold again)."""
    _set_disabled(username, database_url, disabled=False)
