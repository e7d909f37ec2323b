"""Password hashing: argon2id through argon2-cffi, at OWASP's minimum or stronger.

OWASP (Password Storage Cheat Sheet) asks for argon2id with at least 19 MiB of
memory, 2 iterations and 1 degree of parallelism; those are the parameters here.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 128  # argon2 takes any length; the cap only bounds the work a request can ask

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# Verified against when the email is unknown, so that an unknown account takes as long
# to refuse as a wrong password and sign-in does not tell which emails exist.
_DUMMY_HASH = _HASHER.hash("not a password anyone has")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(password_hash)
