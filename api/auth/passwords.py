"""Password hashing: argon2id through argon2-cffi, at OWASP's minimum or stronger.

OWASP (Password Storage Cheat Sheet) asks for argon2id with at least 19 MiB of
memory, 2 iterations and 1 degree of parallelism; those are the defaults here, and
the API process sets its own cost from its settings at start (`use_cost`).
"""

from __future__ import annotations

import logging

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

logger = logging.getLogger(__name__)

MIN_LENGTH = 10
MAX_LENGTH = 128  # argon2 takes any length; the cap only bounds the work a request can ask

OWASP_MEMORY_KIB, OWASP_TIME_COST = 19 * 1024, 2

_HASHER = PasswordHasher(
    time_cost=OWASP_TIME_COST, memory_cost=OWASP_MEMORY_KIB, parallelism=1, type=Type.ID
)
# Verified against when the email is unknown, so that an unknown account takes as long
# to refuse as a wrong password and sign-in does not tell which emails exist.
_DUMMY_HASH = _HASHER.hash("not a password anyone has")


def use_cost(memory_kib: int, time_cost: int) -> None:
    """Hash new passwords at this cost from now on (and the dummy at the same, so an
    unknown email still takes as long as a wrong password). Called once, at start."""
    global _HASHER, _DUMMY_HASH
    _HASHER = PasswordHasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID
    )
    _DUMMY_HASH = _HASHER.hash("not a password anyone has")
    if memory_kib < OWASP_MEMORY_KIB or time_cost < OWASP_TIME_COST:
        logger.warning(
            "passwords are hashed below OWASP's minimum (%d KiB, %d passes): tests only",
            memory_kib,
            time_cost,
        )


def cost() -> tuple[int, int]:
    """The memory (KiB) and passes new hashes are made with."""
    return _HASHER.memory_cost, _HASHER.time_cost


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (never to make a
    stronger hash weaker: argon2's own check wants them equal)."""
    try:
        made = extract_parameters(password_hash)
    except InvalidHashError:
        return True
    return (
        made.type != Type.ID
        or made.memory_cost < _HASHER.memory_cost
        or made.time_cost < _HASHER.time_cost
    )
