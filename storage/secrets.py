"""Secrets at rest: token generation/hashing and symmetric encryption of stored credentials.

Webhook and API tokens are random (256 bits) and stored only as sha256 digests; comparisons are
constant-time. Secrets that must be read back (Evolution API keys, JWT secrets) are encrypted with
Fernet under ``BEAZAP_SECRET_KEY`` (or a key file created next to the embedded database).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet

from core.settings import DEFAULT_HOME


def new_token(prefix: str = "bz") -> str:
    """A new random token, e.g. ``bz_…`` (43 url-safe characters of entropy)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    """Constant-time check of ``token`` against a stored sha256 hex digest."""
    return hmac.compare_digest(hash_token(token), token_hash)


@lru_cache(maxsize=1)
def _fernet() -> Fernet:
    key = os.environ.get("BEAZAP_SECRET_KEY")
    if not key:
        path = Path(os.environ.get("BEAZAP_SECRET_KEY_FILE", DEFAULT_HOME / "secret.key"))
        if path.exists():
            key = path.read_text().strip()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = Fernet.generate_key().decode()
            path.write_text(key)
            path.chmod(0o600)
    return Fernet(key.encode() if isinstance(key, str) else key)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(ciphertext: str) -> str:
    return _fernet().decrypt(ciphertext.encode("ascii")).decode("utf-8")


def keyed_hash(value: str, purpose: str) -> str:
    """HMAC-SHA256 hex of ``value`` under a key derived from the deployment secret and ``purpose``.

    Used where a record must name something without storing it (e.g. the erasure audit keeps the
    keyed hash of an erased phone number, never the number itself).
    """
    return hmac.digest(_purpose_key(purpose), value.encode("utf-8"), "sha256").hex()


@lru_cache(maxsize=32)
def _purpose_key(purpose: str) -> bytes:
    """The HMAC key of ``purpose`` (derived once per process: the receiver hashes a key per webhook)."""
    secret = _fernet()._signing_key + _fernet()._encryption_key  # type: ignore[attr-defined]
    return hashlib.sha256(b"beazap:" + purpose.encode() + b":" + secret).digest()
