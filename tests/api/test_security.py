"""How the service knows who is asking: password hashes, personal access tokens, access
tokens (JWTs), the lock-out, and scopes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import sqlalchemy as sa
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from poise.api import security
from poise.api.security import (
    check_password,
    hash_password,
    issue_jwt,
    issued_before,
    locked,
    lockout,
    new_token,
    parse_scopes,
    parse_token,
    permits,
    read_jwt,
    secret_matches,
    signing_key,
    token_hash,
    verify_password,
)
from poise.domain.errors import AuthError, StoreError, ValidationError
from poise.domain.users import Role, User

KEY = "k" * 64  # HS256 wants a key of at least 32 bytes
PAT = User("0" * 32, "pat", "Pat Adviser", Role.ADVISER, households=frozenset({"H1"}))
NOW = datetime(2026, 12, 9, 9, 30, tzinfo=UTC)
PASSWORD = "correct horse battery"


# ── passwords ────────────────────────────────────────────────────────────────


def test_hash_password_when_verified_then_the_right_password_matches_and_a_wrong_one_does_not() -> (
    None
):
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed
    assert hash_password(PASSWORD) != hashed  # salted
    assert verify_password(PASSWORD, hashed) == (True, None)
    assert verify_password("correct horse battery!", hashed) == (False, None)
    assert verify_password("", hashed) == (False, None)


def test_verify_password_when_hashed_with_weaker_parameters_then_a_new_hash_is_handed_back() -> (
    None
):
    weak = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),))
    old = weak.hash(PASSWORD)
    matches, new = verify_password(PASSWORD, old)
    assert matches
    assert new is not None
    assert new != old
    assert "m=65536" in new  # today's parameters
    assert verify_password(PASSWORD, new) == (True, None)
    assert verify_password("wrong horse battery", old) == (False, None)  # no rehash for a miss


def test_verify_password_when_no_hash_then_refused_as_slowly_as_a_wrong_password() -> None:
    assert verify_password(PASSWORD, None) == (False, None)


def test_verify_password_when_the_stored_hash_is_unreadable_then_a_store_error() -> None:
    with pytest.raises(StoreError, match="poise users passwd"):
        verify_password(PASSWORD, "$2b$12$not-a-hash-poise-reads")


def test_hash_password_when_typed_in_another_unicode_form_then_the_same_password() -> None:
    hashed = hash_password("ﬁnancial planner")  # the ligature ﬁ, one character
    assert verify_password("financial planner", hashed) == (True, None)


@pytest.mark.parametrize(
    ("plain", "message"),
    [
        ("eleven char", "at least 12 characters"),
        (" " * 12, "more than spaces"),
        ("x" * 1025, "at most 1024 characters"),
        ("Pat.Smith@Firm", "not the username"),
    ],
)
def test_check_password_when_it_breaks_the_policy_then_refused(plain: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        hash_password(plain, username="pat.smith@firm")
    assert check_password("twelve chars", username="pat") == "twelve chars"


# ── personal access tokens ───────────────────────────────────────────────────


def test_new_token_when_made_then_it_parses_back_and_only_its_hash_matches() -> None:
    token_id, secret, text = new_token()
    assert text == f"poise_pat_{token_id}_{secret}"
    assert len(token_id) == 32
    assert len(secret) == 43  # 256 bits, URL-safe base64
    assert parse_token(text) == (token_id, secret)
    assert parse_token(f"  {text}\n") == (token_id, secret)
    kept = token_hash(secret)
    assert kept == hashlib.sha256(secret.encode()).hexdigest()
    assert len(kept) == 64
    assert secret_matches(secret, kept)
    assert not secret_matches(secret[:-1] + ("A" if secret[-1] != "A" else "B"), kept)
    assert len({new_token()[1] for _ in range(100)}) == 100


@pytest.mark.parametrize(
    "text",
    [
        "",
        "poise_pat_",
        "poise_pat_" + "a" * 32,
        "poise_pat_" + "a" * 32 + "_short",
        "poise_pat_" + "g" * 32 + "_" + "s" * 43,  # an id is hex
        "ghp_" + "a" * 36,
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",  # a JWT
    ],
)
def test_parse_token_when_not_a_personal_access_token_then_none(text: str) -> None:
    assert parse_token(text) is None


# ── access tokens ────────────────────────────────────────────────────────────


def test_issue_jwt_when_read_back_with_the_key_then_the_claims_are_the_users() -> None:
    token = issue_jwt(PAT, key=KEY, scopes="write read")
    claims = read_jwt(token, key=KEY)
    assert claims["sub"] == PAT.user_id
    assert claims["role"] == "adviser"
    assert claims["scope"] == "read write"
    assert claims["iss"] == "poise"
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert len(claims["jti"]) == 32
    assert read_jwt(issue_jwt(PAT, key=KEY, scopes="read"), key=KEY)["jti"] != claims["jti"]


def test_read_jwt_when_expired_then_refused() -> None:
    with pytest.raises(AuthError, match="expired: sign in again"):
        read_jwt(issue_jwt(PAT, key=KEY, scopes="read", minutes=-1), key=KEY)
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with pytest.raises(AuthError, match="expired"):
        read_jwt(issue_jwt(PAT, key=KEY, scopes="read", now=an_hour_ago), key=KEY)


def test_read_jwt_when_signed_with_another_key_then_refused() -> None:
    with pytest.raises(AuthError, match="not valid"):
        read_jwt(issue_jwt(PAT, key="q" * 64, scopes="read"), key=KEY)


def test_read_jwt_when_the_claims_are_tampered_with_then_the_signature_refuses_them() -> None:
    header, _, signature = issue_jwt(PAT, key=KEY, scopes="read").split(".")
    forged = jwt.encode(
        {**read_jwt(issue_jwt(PAT, key=KEY, scopes="read"), key=KEY), "role": "admin"},
        "q" * 64,
        algorithm="HS256",
    ).split(".")[1]
    with pytest.raises(AuthError, match="not valid"):
        read_jwt(f"{header}.{forged}.{signature}", key=KEY)
    with pytest.raises(AuthError, match="not valid"):
        read_jwt(f"{header}.{forged}.", key=KEY)


def test_read_jwt_when_unsigned_or_not_poises_then_refused() -> None:
    claims = read_jwt(issue_jwt(PAT, key=KEY, scopes="read"), key=KEY)
    unsigned = jwt.encode(claims, None, algorithm="none")
    other_issuer = jwt.encode({**claims, "iss": "elsewhere"}, KEY, algorithm="HS256")
    no_role = jwt.encode({k: v for k, v in claims.items() if k != "role"}, KEY, algorithm="HS256")
    for token in (unsigned, other_issuer, no_role, "not a token"):
        with pytest.raises(AuthError, match="not valid"):
            read_jwt(token, key=KEY)


def test_issued_before_when_the_password_changed_after_the_token_then_it_no_longer_holds() -> None:
    claims = read_jwt(issue_jwt(PAT, key=KEY, scopes="read"), key=KEY)
    issued = datetime.fromtimestamp(claims["iat"], UTC)
    assert issued_before(claims, issued + timedelta(seconds=1))
    assert not issued_before(claims, issued + timedelta(microseconds=999_999))  # the same second
    assert not issued_before(claims, issued - timedelta(days=1))
    assert not issued_before(claims, None)


def test_signing_key_when_asked_twice_then_made_once_and_kept(engine: sa.Engine) -> None:
    with engine.execution_options(writes=True).begin() as connection:
        first = signing_key(connection)
    with engine.execution_options(writes=True).begin() as connection:
        assert signing_key(connection) == first
    assert len(first) >= 64
    read_jwt(issue_jwt(PAT, key=first, scopes="read"), key=first)


# ── scopes ───────────────────────────────────────────────────────────────────


def test_parse_scopes_when_written_either_way_then_the_same_and_unknown_ones_refused() -> None:
    assert parse_scopes("read,write") == parse_scopes("write read") == {"read", "write"}
    assert parse_scopes(" READ ") == {"read"}
    with pytest.raises(ValidationError, match="not admin"):
        parse_scopes("read,admin")
    with pytest.raises(ValidationError, match="not none"):
        parse_scopes(" , ")
    with pytest.raises(ValidationError, match="not admin"):
        issue_jwt(PAT, key=KEY, scopes="admin")


@pytest.mark.parametrize(
    ("scopes", "method", "allowed"),
    [
        ({"read"}, "GET", True),
        ({"read"}, "head", True),
        ({"read"}, "POST", False),
        ({"read"}, "DELETE", False),
        ({"write"}, "GET", True),
        ({"read", "write"}, "POST", True),
        ({"read", "write"}, "PATCH", True),
        (set(), "GET", False),
    ],
)
def test_permits_when_a_token_of_scopes_makes_a_request_then_only_write_changes_things(
    scopes: set[str], method: str, allowed: bool
) -> None:
    assert permits(scopes, method) is allowed


# ── lock-out ─────────────────────────────────────────────────────────────────


def test_lockout_when_the_fifth_wrong_password_comes_then_locked_for_fifteen_minutes() -> None:
    assert [lockout(n, NOW) for n in range(1, security.MAX_FAILED)] == [None] * 4
    until = lockout(security.MAX_FAILED, NOW)
    assert until == NOW + timedelta(minutes=15)
    assert lockout(security.MAX_FAILED + 1, NOW) == until  # each one more locks again
    held = User("1" * 32, "ops", "Ops", Role.OPERATIONS, locked_until=until)
    assert locked(held, NOW)
    assert locked(held, until - timedelta(seconds=1))
    assert not locked(held, until)
    assert not locked(PAT, NOW)
