"""``poise users`` as real processes: who may sign in, added by an administrator the way
one sets up a firm — each role, an adviser's households, passwords piped in, a token
printed once and kept only as a hash — and every refusal with its exit code."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.processes import POISE, Run, run_poise

from poise.api.security import parse_token, verify_password
from poise.store import tables as t
from poise.store.engine import make_engine
from poise.store.migrate import upgrade

PASSWORD = "correct horse battery"

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store at the current schema holding households H1, H2 and H3."""
    url = f"sqlite:///{tmp_path / 'poise.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(t.households),
            [{"household_id": h, "name": f"household {h}"} for h in ("H1", "H2", "H3")],
        )
    engine.dispose()
    return url


def poise(store: str, *args: str, stdin: str | None = None) -> Run:
    """``poise`` with ``stdin`` piped in (a password, for --password-stdin)."""
    if stdin is None:
        return run_poise(
            *args, database_url=store, cwd=Path(store.removeprefix("sqlite:///")).parent
        )
    cwd = Path(store.removeprefix("sqlite:///")).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("POISE_")}
    done = subprocess.run(
        [str(POISE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**env, "POISE_DATABASE_URL": store, "HOME": str(cwd), "COLUMNS": "200"},
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def listed(store: str) -> dict[str, dict[str, Any]]:
    run = poise(store, "users", "list", "--json")
    assert run.code == 0, run.stderr
    return {user["username"]: user for user in json.loads(run.stdout)}


def rows(store: str, table: sa.Table) -> list[dict[str, Any]]:
    engine = make_engine(store)
    with engine.connect() as connection:
        found = [dict(row._mapping) for row in connection.execute(sa.select(table))]
    engine.dispose()
    return found


def test_users_add_when_each_role_is_added_then_each_is_listed_seeing_what_its_role_allows(
    store: str,
) -> None:
    for username, role in [
        ("Ada", "admin"),
        ("ops", "operations"),
        ("cco", "compliance"),
        ("pm", "portfolio_manager"),
    ]:
        run = poise(
            store, "users", "add", username, "--role", role, "--password-stdin", stdin=PASSWORD
        )
        assert run.code == 0, run.stderr
        assert "sees the whole firm" in run.stdout
    adviser = poise(
        store,
        *("users", "add", "pat", "--role", "adviser", "--name", "Pat Adviser"),
        *("--assign", "H1", "--assign", "H2", "--password-stdin"),
        stdin=PASSWORD + "\n",
    )
    assert adviser.code == 0, adviser.stderr
    assert adviser.stdout.strip() == "added pat (adviser): sees 2 household(s) assigned"
    client = poise(
        store,
        *("users", "add", "cleo", "--role", "client", "--household", "H3", "--json"),
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert client.code == 0, client.stderr
    added = json.loads(client.stdout)
    assert (added["role"], added["household_id"], added["password"]) == ("client", "H3", True)
    robot = poise(store, "users", "add", "nightly", "--role", "operations", "--no-password")
    assert robot.code == 0, robot.stderr

    users = listed(store)
    assert sorted(users) == ["ada", "cco", "cleo", "nightly", "ops", "pat", "pm"]
    assert {name: u["role"] for name, u in users.items()} == {
        "ada": "admin",
        "cco": "compliance",
        "cleo": "client",
        "nightly": "operations",
        "ops": "operations",
        "pat": "adviser",
        "pm": "portfolio_manager",
    }
    assert users["ada"]["name"] == "Ada"
    assert (users["pat"]["name"], users["pat"]["households"]) == ("Pat Adviser", ["H1", "H2"])
    assert (users["cleo"]["household_id"], users["cleo"]["households"]) == ("H3", [])
    assert users["nightly"]["password"] is False
    assert all(u["password"] for name, u in users.items() if name != "nightly")
    for kept in rows(store, t.users):
        assert PASSWORD not in str(kept)
        if kept["password_hash"] is not None:
            assert verify_password(PASSWORD, kept["password_hash"]) == (True, None)

    table = poise(store, "users", "list")
    assert table.code == 0, table.stderr
    assert "users (7)" in table.stdout
    assert "H1, H2" in table.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("cleo", "--role", "client"), 3, "error: client cleo needs their household"),
        (("pat", "--role", "adviser", "--assign", "H9"), 5, "error: no household H9 in the store"),
        (("cleo", "--role", "client", "--household", "H9"), 5, "error: no household H9"),
        (("ops", "--role", "operations", "--household", "H1"), 3, "only a client has a household"),
        (("ops", "--role", "operations", "--assign", "H1"), 3, "only an adviser is assigned"),
        (("ops", "--role", "root"), 2, "'root' is not one of"),
        (("pat smith", "--role", "admin"), 3, "'pat smith' is not a username"),
    ],
)
def test_users_add_when_the_role_lacks_what_it_needs_then_refused_before_a_password_is_asked(
    store: str, args: tuple[str, ...], code: int, message: str
) -> None:
    run = poise(store, "users", "add", *args, "--password-stdin", stdin=PASSWORD)
    assert run.code == code, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert rows(store, t.users) == []


def test_users_add_when_the_username_is_taken_or_the_password_short_then_refused(
    store: str,
) -> None:
    first = poise(
        store, "users", "add", "pat", "--role", "admin", "--password-stdin", stdin=PASSWORD
    )
    assert first.code == 0, first.stderr
    again = poise(
        store, "users", "add", "PAT", "--role", "operations", "--password-stdin", stdin=PASSWORD
    )
    assert again.code == 7
    assert again.error_lines == ["error: there is a user pat already"]

    short = poise(store, "users", "add", "sam", "--role", "admin", "--password-stdin", stdin="tiny")
    assert short.code == 3
    assert short.error_lines == ["error: a password has at least 12 characters"]
    no_terminal = poise(store, "users", "add", "sam", "--role", "admin", stdin="")
    assert no_terminal.code == 2
    assert (
        "no terminal to type a password at: pipe it in with --password-stdin" in no_terminal.stderr
    )
    assert [u["username"] for u in rows(store, t.users)] == ["pat"]


def test_users_token_when_made_then_printed_once_and_kept_only_as_a_hash_until_revoked(
    store: str,
) -> None:
    assert poise(store, "users", "add", "ops", "--role", "operations", "--no-password").code == 0
    made = poise(
        store, "users", "token", "OPS", "--name", "nightly export", "--scopes", "read,write"
    )
    assert made.code == 0, made.stderr
    text = made.stdout.strip()
    assert made.stdout == text + "\n"  # the token alone, for a script to capture
    parsed = parse_token(text)
    assert parsed is not None
    token_id, secret = parsed
    assert f"token {token_id} of ops (read write, until " in made.stderr
    assert "it cannot be shown again" in made.stderr

    (kept,) = rows(store, t.api_tokens)
    assert secret not in str(kept)
    assert text not in str(kept)
    assert kept["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert (kept["token_id"], kept["name"], kept["scopes"]) == (
        token_id,
        "nightly export",
        "read write",
    )
    assert (kept["expires_at"] - kept["created_at"]).days == 90

    users = poise(store, "users", "list", "--json")
    assert secret not in users.stdout
    (token,) = json.loads(users.stdout)[0]["tokens"]
    assert (token["token_id"], token["scopes"], token["revoked_at"]) == (
        token_id,
        ["read", "write"],
        None,
    )

    forever = poise(store, "users", "token", "ops", "--expires-days", "0", "--json")
    assert forever.code == 0, forever.stderr
    document = json.loads(forever.stdout)
    assert (document["scopes"], document["expires_at"]) == (["read"], None)  # read, by default
    assert parse_token(document["token"]) is not None

    revoked = poise(store, "users", "revoke", token_id)
    assert revoked.code == 0, revoked.stderr
    assert revoked.stdout.strip() == f"token {token_id} of ops revoked"
    by_text = poise(store, "users", "revoke", document["token"])  # the whole token will do
    assert by_text.code == 0, by_text.stderr
    assert all(row["revoked_at"] is not None for row in rows(store, t.api_tokens))

    unknown = poise(store, "users", "revoke", "f" * 32)
    assert (unknown.code, unknown.error_lines) == (5, [f"error: no token '{'f' * 32}'"])
    nobody = poise(store, "users", "token", "nobody")
    assert (nobody.code, nobody.error_lines) == (5, ["error: no user nobody"])
    bad_scope = poise(store, "users", "token", "ops", "--scopes", "admin")
    assert (bad_scope.code, bad_scope.error_lines) == (
        3,
        ["error: scopes are read and write, not admin"],
    )


def test_users_passwd_when_a_locked_out_user_gets_a_new_password_then_it_holds_and_the_lock_lifts(
    store: str,
) -> None:
    assert (
        poise(
            store, "users", "add", "pat", "--role", "admin", "--password-stdin", stdin=PASSWORD
        ).code
        == 0
    )
    engine = make_engine(store)
    with engine.begin() as connection:
        connection.execute(
            sa.update(t.users).values(
                failed_logins=5, locked_until=sa.func.datetime("now", "+15 minutes")
            )
        )
    engine.dispose()

    run = poise(
        store, "users", "passwd", "Pat", "--password-stdin", stdin="a new and longer pass phrase\n"
    )
    assert run.code == 0, run.stderr
    assert run.stdout.strip() == "password of pat set"
    (kept,) = rows(store, t.users)
    assert verify_password("a new and longer pass phrase", kept["password_hash"]) == (True, None)
    assert verify_password(PASSWORD, kept["password_hash"]) == (False, None)
    assert (kept["failed_logins"], kept["locked_until"]) == (0, None)
    assert kept["password_changed_at"] > kept["created_at"]

    short = poise(store, "users", "passwd", "pat", "--password-stdin", stdin="tiny")
    assert (short.code, short.error_lines) == (3, ["error: a password has at least 12 characters"])
    nobody = poise(store, "users", "passwd", "nobody", "--password-stdin", stdin=PASSWORD)
    assert (nobody.code, nobody.error_lines) == (5, ["error: no user nobody"])


def test_users_assign_and_disable_when_an_adviser_changes_hands_then_the_list_shows_it(
    store: str,
) -> None:
    assert (
        poise(
            store, "users", "add", "pat", "--role", "adviser", "--assign", "H1", "--no-password"
        ).code
        == 0
    )
    assert poise(store, "users", "add", "ops", "--role", "operations", "--no-password").code == 0

    more = poise(store, "users", "assign", "pat", "H2", "H3")
    assert more.code == 0, more.stderr
    assert more.stdout.strip() == "pat is assigned 3 household(s): H1, H2, H3"
    only = poise(store, "users", "assign", "pat", "H2", "--replace", "--json")
    assert json.loads(only.stdout)["households"] == ["H2"]
    unknown = poise(store, "users", "assign", "pat", "H9")
    assert (unknown.code, unknown.error_lines) == (
        5,
        ["error: no household H9 in the store (load households first)"],
    )
    not_adviser = poise(store, "users", "assign", "ops", "H1")
    assert not_adviser.code == 3
    assert "only an adviser is assigned households; ops is operations" in not_adviser.stderr

    off = poise(store, "users", "disable", "pat")
    assert (off.code, off.stdout.strip()) == (0, "pat disabled")
    assert listed(store)["pat"]["disabled"] is True
    refused = poise(store, "users", "token", "pat")
    assert (refused.code, refused.error_lines) == (3, ["error: pat is disabled: enable them first"])
    on = poise(store, "users", "enable", "pat")
    assert (on.code, on.stdout.strip()) == (0, "pat enabled")
    pat = listed(store)["pat"]
    assert (pat["disabled"], pat["households"]) == (False, ["H2"])
