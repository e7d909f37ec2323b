"""Merchants' staff: accounts made by an operator (the first, the owner) or by the owner,
sign-in, password change. Passwords as users' are (api.auth.passwords); the callers
count every password check against the throttle (api.auth.rate_limit)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlmodel import Session, col, select

from api.auth.passwords import hash_password, needs_rehash, verify_password
from api.auth.users import EmailTaken, normalise_email
from api.auth.web_sessions import end_sessions
from db.staff import MerchantUser
from db.writes import insert_ignore


def create_merchant_user(
    session: Session, merchant_id: str, email: str, password: str, now: datetime
) -> MerchantUser:
    """A staff member of the merchant; the merchant's first is its owner. Raises
    EmailTaken when the email has a staff account (even concurrently)."""
    has_staff = session.exec(
        select(MerchantUser.id).where(col(MerchantUser.merchant_id) == merchant_id).limit(1)
    ).first()
    values = {
        "id": f"mu_{secrets.token_hex(12)}",
        "merchant_id": merchant_id,
        "email": normalise_email(email),
        "password_hash": hash_password(password),
        "is_owner": has_staff is None,
        "token_version": 0,
        "created_at": now,
        "updated_at": now,
    }
    if not insert_ignore(session, MerchantUser, values):
        raise EmailTaken(email)
    user = session.get(MerchantUser, values["id"])
    assert user is not None
    return user


def merchant_staff(session: Session, merchant_id: str) -> list[MerchantUser]:
    query = select(MerchantUser).where(col(MerchantUser.merchant_id) == merchant_id)
    return list(session.exec(query.order_by(col(MerchantUser.created_at))).all())


def authenticate_staff(
    session: Session, email: str, password: str, now: datetime
) -> MerchantUser | None:
    """The staff member with this email and password, or None (as slowly when unknown)."""
    user = session.exec(
        select(MerchantUser).where(MerchantUser.email == normalise_email(email))
    ).first()
    if not verify_password(user.password_hash if user else None, password):
        return None
    assert user is not None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        user.updated_at = now
    return user


def change_staff_password(
    session: Session, user: MerchantUser, new_password: str, now: datetime
) -> None:
    """Set the new password and end every session of the user's (the version moves on,
    and each open session row is revoked)."""
    user.password_hash = hash_password(new_password)
    user.token_version += 1
    user.updated_at = now
    end_sessions(session, "merchant", user.id, now)
