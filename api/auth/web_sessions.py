"""Browser sessions of the pages (merchants' staff and operators): server-side rows.

Why rows and not a signed cookie: a signed cookie stays valid until it expires, so
signing out, a password change or an operator removing access could only be honoured
with a list of refused cookies, which is a session table by another name. Here the
cookie carries 256 random bits; the row keeps only their SHA-256 (a stolen database
opens no session), the CSRF token of the session's forms, and the person's token
version at sign-in: a session is honoured while that is still the person's version
(`users.token_version` for operators, as access tokens are; `merchant_users` for staff)
and it is neither revoked nor expired.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from api.auth.secrets_digest import digest
from db.identity import User
from db.staff import MerchantUser, WebSession

SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class OpenedSession:
    token: str  # for the cookie; never stored
    row: WebSession


@dataclass(frozen=True)
class SessionHolder:
    """Who a live session belongs to."""

    kind: str  # merchant | operator
    subject_id: str  # merchant_users.id or users.id
    merchant_id: str | None  # the staff member's merchant
    is_owner: bool
    email: str
    csrf_token: str
    session_id: str


def open_session(
    session: Session, kind: str, subject_id: str, version: int, now: datetime
) -> OpenedSession:
    token = secrets.token_urlsafe(32)
    row = WebSession(
        id=digest(token),
        kind=kind,
        subject_id=subject_id,
        token_version=version,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    session.add(row)
    return OpenedSession(token=token, row=row)


def read_session(session: Session, token: str, now: datetime) -> SessionHolder | None:
    """The holder of the session this cookie token opens, or None: unknown, revoked,
    expired, or its person's password changed since (or the person is gone)."""
    row = session.get(WebSession, digest(token))
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
        return None
    if row.kind == "operator":
        user = session.exec(select(User).where(col(User.id) == row.subject_id)).first()
        if user is None or user.role != "operator" or user.token_version != row.token_version:
            return None
        return SessionHolder("operator", user.id, None, False, user.email, row.csrf_token, row.id)
    staff = session.get(MerchantUser, row.subject_id)
    if staff is None or staff.token_version != row.token_version:
        return None
    return SessionHolder(
        "merchant", staff.id, staff.merchant_id, staff.is_owner, staff.email, row.csrf_token, row.id
    )


def end_session(session: Session, session_id: str, now: datetime) -> None:
    session.execute(
        update(WebSession)
        .where(col(WebSession.id) == session_id, col(WebSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )


def end_sessions(session: Session, kind: str, subject_id: str, now: datetime) -> None:
    """Revoke every open session of the person (a password change, say)."""
    session.execute(
        update(WebSession)
        .where(
            col(WebSession.kind) == kind,
            col(WebSession.subject_id) == subject_id,
            col(WebSession.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )


def _aware(moment: datetime) -> datetime:
    # SQLite hands datetimes back without their zone; we only ever store UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
