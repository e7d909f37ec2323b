"""Merchants' API keys: `psk_{prefix}_{secret}`, shown once, kept as a digest.

The prefix is public (it names the key in listings and finds its row); the
secret part is 256 random bits. A merchant may hold several live keys at once,
so a new key can be rolled out before the old one is revoked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from api.auth.secrets_digest import digest, matches
from db.identity import ApiKey

KEY_MARK = "psk_"
PREFIX_LENGTH = len(KEY_MARK) + 12  # "psk_" and 6 random bytes in hex


@dataclass(frozen=True)
class NewApiKey:
    row: ApiKey
    key: str  # the whole key: returned to the merchant once, never stored


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(KEY_MARK)


def create_api_key(session: Session, merchant_id: str, name: str, now: datetime) -> NewApiKey:
    prefix = f"{KEY_MARK}{secrets.token_hex(6)}"
    assert len(prefix) == PREFIX_LENGTH
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        id=f"key_{secrets.token_hex(12)}",
        merchant_id=merchant_id,
        prefix=prefix,
        key_hash=digest(key),
        name=name,
        created_at=now,
    )
    session.add(row)
    return NewApiKey(row=row, key=key)


# Built once (every request with an API key asks): see db.payments.
_BY_PREFIX = select(ApiKey).where(col(ApiKey.prefix) == bindparam("prefix"))


def merchant_for_key(session: Session, key: str) -> str | None:
    """The merchant a live key belongs to, or None."""
    # By length: the secret part is urlsafe base64, which may itself hold "_".
    prefix = key[:PREFIX_LENGTH]
    row = session.exec(_BY_PREFIX, params={"prefix": prefix}).first()
    if row is None or row.revoked_at is not None or not matches(key, row.key_hash):
        return None
    return row.merchant_id
