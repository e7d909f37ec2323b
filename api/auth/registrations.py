"""Registration that tells no one which addresses have accounts.

Registering answers alike for every address, and the answer goes to the address: a new
one gets a confirmation code (the account opens when the code comes back), one that has
an account gets "someone tried to register with your address". The password is hashed
either way, so the two take as long. Until the code comes back nothing is an account,
so a stranger who registers someone's address can neither sign in with it nor learn,
by signing in, whether it was free. Several pending registrations of one address may
wait at once; the first confirmed opens the account.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, select

from api.auth.outbox import queue_already_registered, queue_confirmation
from api.auth.passwords import hash_password
from api.auth.secrets_digest import digest
from api.auth.users import EmailTaken, normalise_email
from db.identity import Registration, User
from db.times import as_utc
from db.writes import insert_ignore

CODE_LIFETIME = timedelta(hours=24)


class CodeInvalid(Exception):
    """No pending registration has this code (never had, used, or expired)."""


def start_registration(
    session: Session, email: str, password: str, display_name: str, now: datetime
) -> None:
    email = normalise_email(email)
    password_hash = hash_password(password)  # for a known address too: the same time
    if session.exec(select(User.id).where(User.email == email)).first() is not None:
        queue_already_registered(session, email, now)
        return
    code = secrets.token_urlsafe(32)
    session.add(
        Registration(
            id=f"reg_{secrets.token_hex(12)}",
            email=email,
            password_hash=password_hash,
            display_name=display_name,
            code_hash=digest(code),
            expires_at=now + CODE_LIFETIME,
            created_at=now,
        )
    )
    queue_confirmation(session, email, code, now)


def complete_registration(session: Session, code: str, now: datetime) -> User:
    """Open the account the code confirms; raises CodeInvalid, or EmailTaken when another
    registration of the address was confirmed first (even concurrently)."""
    registration = session.exec(
        select(Registration).where(Registration.code_hash == digest(code)).with_for_update()
    ).first()
    if registration is None or registration.completed_at is not None:
        raise CodeInvalid
    if as_utc(registration.expires_at) <= now:
        raise CodeInvalid
    registration.completed_at = now
    values = {
        "id": f"usr_{secrets.token_hex(12)}",
        "email": registration.email,
        "role": "buyer",
        "password_hash": registration.password_hash,
        "display_name": registration.display_name,
        "token_version": 0,
        "created_at": now,
        "updated_at": now,
    }
    if not insert_ignore(session, User, values):
        raise EmailTaken(registration.email)
    user = session.get(User, values["id"])
    assert user is not None
    return user
