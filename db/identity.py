"""Who calls us: users (buyers and operators), their refresh tokens, merchants' API keys;
registrations waiting for their address to be confirmed, and the messages we send people.

No secret is stored in a form that could be replayed: passwords as argon2id hashes,
refresh tokens and API keys as SHA-256 digests of high-entropy random strings.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Integer, text
from sqlmodel import Field, SQLModel


class User(SQLModel, table=True):
    """A person who signs in with email and password: a buyer or an operator."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('buyer', 'operator')", name="ck_users_role"),)

    id: str = Field(primary_key=True)
    email: str = Field(unique=True)  # stored lower-cased
    role: str  # buyer | operator
    password_hash: str
    display_name: str = ""
    # In every access token; bumped when the password changes, which refuses every
    # token issued before (api.auth.caller reads it on each request).
    token_version: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    created_at: datetime
    updated_at: datetime


class RefreshToken(SQLModel, table=True):
    """One refresh token; used once (rotated), revoked when the password changes."""

    __tablename__ = "refresh_tokens"

    id: str = Field(primary_key=True)
    user_id: str = Field(index=True, foreign_key="users.id")
    token_hash: str = Field(unique=True)
    expires_at: datetime
    revoked_at: datetime | None = None
    created_at: datetime


class ApiKey(SQLModel, table=True):
    """A merchant's API key: shown once, kept as a digest, found by its visible prefix."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True)
    merchant_id: str = Field(index=True, foreign_key="merchants.id")
    prefix: str = Field(unique=True)  # the key's first characters, shown in listings
    key_hash: str
    name: str = ""
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class Registration(SQLModel, table=True):
    """A sign-up waiting for its address to be confirmed: no account exists until the
    code sent to the address comes back (so registering says nothing about who has one)."""

    __tablename__ = "registrations"

    id: str = Field(primary_key=True)
    email: str = Field(index=True)  # stored lower-cased
    password_hash: str
    display_name: str = ""
    code_hash: str = Field(unique=True)  # SHA-256 of the code sent to the address
    expires_at: datetime
    completed_at: datetime | None = None
    created_at: datetime


class OutboundMessage(SQLModel, table=True):
    """A message for a person's address, waiting for the mailer (the outbox pattern:
    written in the transaction that decided to send it)."""

    __tablename__ = "outbound_messages"

    id: str = Field(primary_key=True)
    recipient: str = Field(index=True)
    kind: str  # confirm_registration | already_registered
    subject: str
    body: str
    created_at: datetime
    sent_at: datetime | None = None
