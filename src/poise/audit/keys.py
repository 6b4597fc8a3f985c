"""The firm's Ed25519 key, and the bytes a checkpoint's signature is made over.

The private key lives in a file, never in the database: whoever can change the
database must not also be able to sign what they changed. Its place is the setting
``POISE_AUDIT_KEY``, by default ``audit-key.pem`` in poise's folder of the user's
configuration (``$XDG_CONFIG_HOME/poise``, else ``~/.config/poise``) — not beside the
database, whose backups and copies travel further than a key should. It is written
once, readable by its owner alone (0600), and never overwritten.

A checkpoint signs four lines of ASCII, each ending in a line feed::

    poise-audit-checkpoint/v1
    <tree size, decimal>
    <root hash, 64 lowercase hex digits>
    <time, YYYY-MM-DDTHH:MM:SS.ffffffZ>

A key is known by its id: SHA-256 of its 32 raw public bytes, in hex.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from poise.audit.canonical import at_text
from poise.domain.errors import ConfigError

__all__ = [
    "MESSAGE_HEADER",
    "checkpoint_message",
    "default_key_path",
    "key_id",
    "load_private_key",
    "load_public_key",
    "make_key",
    "public_half",
    "public_pem",
    "verify_signature",
]

MESSAGE_HEADER = "poise-audit-checkpoint/v1"
SETTING = "POISE_AUDIT_KEY"


def default_key_path() -> Path:
    """``audit-key.pem`` in poise's configuration folder (see the module's docstring)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "poise" / "audit-key.pem"


def checkpoint_message(*, size: int, root: bytes, at: datetime) -> bytes:
    """The bytes a checkpoint's signature is made over."""
    if size < 0 or len(root) != 32:
        raise ValueError("a checkpoint is a tree size and a 32-byte root")
    return f"{MESSAGE_HEADER}\n{size}\n{root.hex()}\n{at_text(at)}\n".encode("ascii")


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def make_key(path: Path) -> Ed25519PrivateKey:
    """A new key, written to ``path`` (0600, its folder made 0700); an existing file is
    never overwritten — the checkpoints it signed would lose their signer."""
    if path.exists():
        raise ConfigError(
            f"{path} exists already: poise never overwrites an audit key (the checkpoints"
            f" it signed rest on it) — move it away first, or point {SETTING} elsewhere"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists already: poise never overwrites an audit key") from None
    with os.fdopen(handle, "wb") as out:
        out.write(pem)
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The firm's signing key from ``path``; a :class:`ConfigError` that says how to
    make one when there is none, or when the file holds something else."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"there is no audit key at {path}: make one with `poise audit key`, or point"
            f" {SETTING} at the firm's"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the audit key {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def public_half(path: Path) -> Ed25519PublicKey | None:
    """The public half of the firm's key at ``path``, to check checkpoints' signatures
    with; ``None`` when there is no file there."""
    if not path.exists():
        return None
    return load_private_key(path).public_key()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"not an Ed25519 public key but a {type(key).__name__}")
    return key


def verify_signature(public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True
