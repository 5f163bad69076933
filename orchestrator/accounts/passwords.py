"""Passwords, hashed with argon2id (argon2-cffi, RFC 9106 parameters).

A sign-in with an unknown address still verifies a password against a hash made once per
process, so the answer takes as long as for a real account: timing does not tell which
addresses have accounts.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from orchestrator.errors import InvalidField

MIN_LENGTH = 12
MAX_LENGTH = 1024  # hashing cost does not grow with it, but nobody needs more


def make_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's defaults (RFC 9106 "low memory": 64 MiB, 3 passes)."""
    return PasswordHasher()


def check_new_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidField("password", f"must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidField("password", f"must have at most {MAX_LENGTH} characters")
    if "\x00" in password:
        raise InvalidField("password", "must not contain NUL")
    return password


def hash_password(hasher: PasswordHasher, password: str) -> str:
    return hasher.hash(check_new_password(password))


def verify_password(hasher: PasswordHasher, stored_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; with no stored hash, the same work is done and False
    returned, so an unknown account costs what a known one does."""
    candidate = password[:MAX_LENGTH]
    try:
        matched = hasher.verify(stored_hash or _decoy_hash(hasher), candidate)
    except (VerificationError, InvalidHashError):
        return False
    return matched and stored_hash is not None


@lru_cache(maxsize=4)
def _decoy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash("no account has this password")
