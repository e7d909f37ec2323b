"""Buyers and operators: accounts made (api.auth.registrations for buyers, api.manage
for operators), sign-in, password change."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel import Session, select

from api.auth.passwords import hash_password, needs_rehash, verify_password
from api.auth.refresh import revoke_all
from db.identity import User
from db.writes import insert_ignore


class EmailTaken(Exception):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session, email: str, password: str, role: str, display_name: str, now: datetime
) -> User:
    """Insert a user; raises EmailTaken when the email has an account (even concurrently)."""
    values = {
        "id": f"{'usr' if role == 'buyer' else 'op'}_{secrets.token_hex(12)}",
        "email": normalise_email(email),
        "role": role,
        "password_hash": hash_password(password),
        "display_name": display_name,
        "created_at": now,
        "updated_at": now,
    }
    if not insert_ignore(session, User, values):
        raise EmailTaken(email)
    user = session.get(User, values["id"])
    assert user is not None
    return user


def authenticate(session: Session, email: str, password: str, now: datetime) -> User | None:
    """The user with this email and password, or None (as slowly for an unknown email)."""
    user = session.exec(select(User).where(User.email == normalise_email(email))).first()
    if not verify_password(user.password_hash if user else None, password):
        return None
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        user.updated_at = now
    return user


def change_password(session: Session, user: User, new_password: str, now: datetime) -> None:
    """Set the new password and end every session: each refresh token is revoked, and
    each access token refused from now on (its token version is behind the user's)."""
    user.password_hash = hash_password(new_password)
    user.token_version += 1
    user.updated_at = now
    revoke_all(session, user.id, now)
