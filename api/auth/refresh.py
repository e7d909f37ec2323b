"""Refresh tokens: random, stored as digests, used once, revocable.

Each use rotates the token: the presented one is revoked and a new one issued.
A revoked token presented again means it was copied; every token of that user
is revoked then, and they sign in again.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from api.auth.secrets_digest import digest
from db.identity import RefreshToken, User
from db.times import as_utc

TOKEN_BYTES = 32


def issue_refresh_token(session: Session, user_id: str, lifetime: timedelta, now: datetime) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        RefreshToken(
            id=f"rt_{secrets.token_hex(12)}",
            user_id=user_id,
            token_hash=digest(token),
            expires_at=now + lifetime,
            created_at=now,
        )
    )
    return token


def redeem_refresh_token(session: Session, token: str, now: datetime) -> User | None:
    """The user the token belongs to, or None; the token itself is spent (revoked) here.

    A token already spent revokes every token of its user (commit even when None).
    """
    row = session.exec(
        select(RefreshToken).where(RefreshToken.token_hash == digest(token)).with_for_update()
    ).first()
    if row is None or as_utc(row.expires_at) <= now:
        return None
    if row.revoked_at is not None:
        revoke_all(session, row.user_id, now)  # a spent token came back: assume it was stolen
        return None
    row.revoked_at = now
    return session.get(User, row.user_id)


def revoke_all(session: Session, user_id: str, now: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
