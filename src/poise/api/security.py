"""How the service knows who is asking: passwords, personal access tokens, access
tokens (JWTs), the lock-out after wrong passwords, and token scopes — each a small
function over a well-kept library, none of the cryptography written here.

- **Passwords** are hashed with Argon2id by pwdlib (its recommended parameters), after
  Unicode NFKC normalisation, so that one password typed on two keyboards is one
  password. A hash made with weaker parameters than today's is replaced at the next
  sign-in (:func:`verify_password` hands back the new hash).
- **Personal access tokens** read ``poise_pat_<token id>_<secret>``: the id finds the
  token, the secret proves it. The secret is 256 random bits, so a fast hash (SHA-256)
  is as safe as a slow one — nobody can guess through 2²⁵⁶ — and checking a token on
  every request stays cheap; only the hash is kept, compared in constant time.
- **Access tokens** are JWTs signed with HS256 by PyJWT, with a key made once per
  store (:func:`signing_key`), short-lived (15 minutes unless asked otherwise).
- **Lock-out**: :data:`MAX_FAILED` wrong passwords in a row lock the user out for
  :data:`LOCK_MINUTES`, even with the right password; each wrong one after that locks
  them again, until a right one (or ``poise users passwd``) clears the count.
- **Scopes**: ``read`` lets a token read (GET, HEAD, OPTIONS); ``write`` lets it also
  change things (POST, PUT, PATCH, DELETE). A session signed in with a password has
  both.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
import uuid
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
import sqlalchemy as sa
from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError

from poise.domain.errors import AuthError, StoreError, ValidationError
from poise.domain.users import User

__all__ = [
    "ISSUER",
    "JWT_MINUTES",
    "LOCK_MINUTES",
    "MAX_FAILED",
    "MIN_PASSWORD",
    "READ",
    "SCOPES",
    "TOKEN_PREFIX",
    "WRITE",
    "check_password",
    "hash_password",
    "issue_jwt",
    "issued_before",
    "locked",
    "lockout",
    "new_token",
    "parse_scopes",
    "parse_token",
    "permits",
    "read_jwt",
    "secret_matches",
    "signing_key",
    "token_hash",
    "verify_password",
]

# ── passwords ────────────────────────────────────────────────────────────────

MIN_PASSWORD = 12  # characters, at least
MAX_PASSWORD = 1024  # characters, at most: a pass-phrase, not a file

_hasher = PasswordHash.recommended()  # Argon2id


def _normal(plain: str) -> str:
    return unicodedata.normalize("NFKC", plain)


def check_password(plain: str, *, username: str | None = None) -> str:
    """``plain`` if it is a password poise accepts: at least :data:`MIN_PASSWORD`
    characters (and at most :data:`MAX_PASSWORD`), not only spaces, not the username;
    else a :class:`ValidationError` saying why."""
    text = _normal(plain)
    if len(text) < MIN_PASSWORD:
        raise ValidationError(f"a password has at least {MIN_PASSWORD} characters")
    if len(text) > MAX_PASSWORD:
        raise ValidationError(f"a password has at most {MAX_PASSWORD} characters")
    if not text.strip():
        raise ValidationError("a password is more than spaces")
    if username is not None and text.strip().lower() == username.strip().lower():
        raise ValidationError("a password is not the username")
    return plain


def hash_password(plain: str, *, username: str | None = None) -> str:
    """The hash to keep of a new password (Argon2id, a PHC string with its salt and
    parameters), once :func:`check_password` accepts it."""
    return _hasher.hash(_normal(check_password(plain, username=username)))


@cache
def _no_one() -> str:
    """A hash that no password is checked against for real: an unknown user's sign-in
    takes as long as a known user's, so the time taken does not tell who exists."""
    return _hasher.hash(secrets.token_urlsafe(32))


def verify_password(plain: str, hashed: str | None) -> tuple[bool, str | None]:
    """Whether ``plain`` is the password ``hashed`` was made from, and — when it is and
    the hash was made with other parameters than today's — the new hash to keep in its
    place (else None).

    ``hashed`` None (an unknown user, or one without a password) is never a match, but
    takes as long to refuse as a wrong password. A stored hash poise cannot read is a
    :class:`StoreError`, not a refusal: it needs mending (``poise users passwd``)."""
    try:
        if hashed is None:
            _hasher.verify(_normal(plain), _no_one())
            return False, None
        return _hasher.verify_and_update(_normal(plain), hashed)
    except PwdlibError:
        raise StoreError(
            "a password hash in the store is not one poise can read:"
            " set the password again with poise users passwd"
        ) from None


# ── personal access tokens ───────────────────────────────────────────────────

TOKEN_PREFIX = "poise_pat_"
_TOKEN = re.compile(rf"{TOKEN_PREFIX}(?P<id>[0-9a-f]{{32}})_(?P<secret>[A-Za-z0-9_-]{{43}})")


def new_token() -> tuple[str, str, str]:
    """A new personal access token: ``(token_id, secret, full_text)``. The id is a uuid4
    in hex; the secret 256 random bits, URL-safe base64 (43 characters); the full text,
    ``poise_pat_<id>_<secret>``, is what its holder sends — shown once, never kept."""
    token_id = uuid.uuid4().hex
    secret = secrets.token_urlsafe(32)
    return token_id, secret, f"{TOKEN_PREFIX}{token_id}_{secret}"


def token_hash(secret: str) -> str:
    """What is kept of a token's secret: its SHA-256, in hex. A fast hash is the right
    one here, unlike for a password: the secret is 256 random bits, which no amount of
    hashing speed helps anyone guess."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token(text: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a personal access token's full text, or None: not one
    (a JWT, say, or a token mangled in copying)."""
    found = _TOKEN.fullmatch(text.strip())
    return None if found is None else (found["id"], found["secret"])


def secret_matches(secret: str, secret_hash: str) -> bool:
    """Whether ``secret`` is the one ``secret_hash`` was kept of, compared in constant
    time."""
    return hmac.compare_digest(token_hash(secret), secret_hash)


# ── scopes ───────────────────────────────────────────────────────────────────

READ = "read"  # GET, HEAD, OPTIONS
WRITE = "write"  # everything READ may, and POST, PUT, PATCH, DELETE
SCOPES = (READ, WRITE)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def parse_scopes(text: str) -> frozenset[str]:
    """Scopes as written on a command line (``read,write``) or in a token (``read
    write``); a :class:`ValidationError` for none, or for one poise does not know."""
    scopes = frozenset(text.replace(",", " ").lower().split())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        shown = ", ".join(unknown) if unknown else "none"
        raise ValidationError(f"scopes are {' and '.join(SCOPES)}, not {shown}")
    return scopes


def permits(scopes: Collection[str], method: str) -> bool:
    """Whether a token of ``scopes`` may make a request of HTTP ``method``."""
    if method.upper() in _SAFE:
        return READ in scopes or WRITE in scopes
    return WRITE in scopes


# ── access tokens (JWTs) ─────────────────────────────────────────────────────

ISSUER = "poise"
JWT_MINUTES = 15
ALGORITHM = "HS256"
LEEWAY = 10  # seconds of clock difference between the machines of several workers
_REQUIRED = ["sub", "role", "scope", "iat", "exp", "iss", "jti"]


def issue_jwt(
    user: User,
    *,
    key: str,
    scopes: str,
    minutes: int = JWT_MINUTES,
    now: datetime | None = None,
) -> str:
    """An access token for ``user``, signed with ``key`` (HS256): who (``sub``, the
    user's id), their ``role``, the ``scope`` it grants (space-separated), when it was
    issued (``iat``) and until when it holds (``exp``, ``minutes`` later), by whom
    (``iss``: poise), and its own id (``jti``)."""
    issued = now or datetime.now(UTC)
    claims = {
        "sub": user.user_id,
        "role": user.role.value,
        "scope": " ".join(sorted(parse_scopes(scopes))),
        "iat": issued,
        "exp": issued + timedelta(minutes=minutes),
        "iss": ISSUER,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def read_jwt(token: str, *, key: str) -> dict[str, Any]:
    """The claims of an access token signed with ``key``, checked: signature, issuer,
    every claim present, not expired. Anything else is an :class:`AuthError`."""
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": _REQUIRED},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("the access token has expired: sign in again") from None
    except jwt.InvalidTokenError:
        raise AuthError("the access token is not valid") from None


def issued_before(claims: Mapping[str, Any], moment: datetime | None) -> bool:
    """Whether the token of ``claims`` was issued before ``moment`` (the user's password
    last changed: such a token no longer holds). ``iat`` counts whole seconds, so a
    token issued in the very second of the change still holds."""
    return moment is not None and int(claims["iat"]) < int(moment.timestamp())


def signing_key(connection: sa.Connection) -> str:
    """The key access tokens are signed with: made the first time it is asked for and
    kept in the store, so that every worker and every restart signs alike. Ask in a
    transaction begun with ``writes=True``: the first time, it writes."""
    from poise.store import repo  # noqa: PLC0415 - the store loads with the application

    return repo.service_secret(connection, name="jwt", make=lambda: secrets.token_urlsafe(48))


# ── lock-out ─────────────────────────────────────────────────────────────────

MAX_FAILED = 5  # wrong passwords in a row before the user is locked out
LOCK_MINUTES = 15


def locked(user: User, now: datetime) -> bool:
    """Whether ``user`` is locked out at ``now``."""
    return user.locked_until is not None and now < user.locked_until


def lockout(failures: int, now: datetime) -> datetime | None:
    """Until when to lock out a user with ``failures`` wrong passwords in a row, at
    ``now``; None: not yet."""
    return now + timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILED else None
