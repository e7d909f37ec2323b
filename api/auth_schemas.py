"""What the sign-in, profile and API-key routes take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictStr

from api.auth.passwords import MAX_LENGTH, MIN_LENGTH
from api.text import PlainText

_Forbid = ConfigDict(extra="forbid")
Password = Annotated[StrictStr, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]
DisplayName = Annotated[PlainText, Field(max_length=100)]


class RegisterIn(BaseModel):
    model_config = _Forbid
    email: EmailStr
    password: Password
    display_name: DisplayName = ""


class RegistrationAccepted(BaseModel):
    """The one answer to every registration: it says nothing of whether the address
    had an account (the message sent to the address does)."""

    email: str  # as it will be stored: lower-cased
    message: str = "Check this address: a message there says what to do next."


class ConfirmIn(BaseModel):
    model_config = _Forbid
    code: Annotated[StrictStr, Field(min_length=1, max_length=100)]


class ProfileOut(BaseModel):
    id: str
    email: str
    role: str
    display_name: str
    created_at: datetime


class ProfileUpdate(BaseModel):
    model_config = _Forbid
    display_name: DisplayName


class PasswordChange(BaseModel):
    model_config = _Forbid
    current_password: Annotated[StrictStr, Field(max_length=MAX_LENGTH)]
    new_password: Password


class TokenOut(BaseModel):
    """OAuth2's token response (RFC 6749 5.1)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str


class ApiKeyCreate(BaseModel):
    model_config = _Forbid
    name: Annotated[PlainText, Field(max_length=100)] = ""


class ApiKeyOut(BaseModel):
    id: str
    merchant_id: str
    prefix: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class NewApiKeyOut(ApiKeyOut):
    key: str  # the whole key, shown this once
