"""People who sign in to the pages: merchants' staff, and the browser sessions of staff
and operators.

A merchant user belongs to one merchant; the first one, made by an operator, is its
owner, who may add more. A web session is a row (not a signed cookie) so that signing
out, a password change or an operator's word ends it at once: the cookie holds a random
token, the row only its SHA-256 digest, and the session is honoured while the person's
token version is the one it was opened at (as access tokens do with `users.token_version`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Integer, text
from sqlmodel import Field, SQLModel


class MerchantUser(SQLModel, table=True):
    """A merchant's staff member: email + password (argon2id), never an API caller."""

    __tablename__ = "merchant_users"

    id: str = Field(primary_key=True)
    merchant_id: str = Field(index=True, foreign_key="merchants.id")
    email: str = Field(unique=True)  # stored lower-cased
    password_hash: str
    is_owner: bool = False
    # Bumped by a password change: every session opened before is refused.
    token_version: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    created_at: datetime
    updated_at: datetime


class WebSession(SQLModel, table=True):
    """A signed-in browser: a merchant user's or an operator's (`users.id`)."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        CheckConstraint("kind IN ('merchant', 'operator')", name="ck_web_sessions_kind"),
    )

    id: str = Field(primary_key=True)  # SHA-256 of the cookie's token, hex
    kind: str  # merchant | operator
    subject_id: str = Field(index=True)  # merchant_users.id or users.id, by kind
    token_version: int  # the person's when the session opened
    csrf_token: str  # the synchronizer token every form of this session carries
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
