"""Buyers register and sign in (OAuth2 password flow); tokens are refreshed by rotation.

    POST /v1/auth/register   email + password -> 202, and a message to the address
    POST /v1/auth/confirm    the code the message carried -> the buyer account
    POST /v1/auth/token      grant_type=password (username, password) or
                             grant_type=refresh_token (refresh_token) -> access + refresh

Registering answers alike whether the address has an account (api.auth.registrations).
Operators sign in here as well; they are created by `python -m api.manage`.
Registration and sign-in are throttled (api.auth.rate_limit; 429 + Retry-After).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlmodel import Session

from api.auth.caller import PUBLIC, Unauthenticated
from api.auth.rate_limit import client_address
from api.auth.refresh import issue_refresh_token, redeem_refresh_token
from api.auth.registrations import CodeInvalid, complete_registration, start_registration
from api.auth.tokens import issue_access_token, utc_now
from api.auth.users import EmailTaken, authenticate, normalise_email
from api.auth_schemas import ConfirmIn, ProfileOut, RegisterIn, RegistrationAccepted, TokenOut
from api.deps import AppContext, ContextDep
from api.errors import Conflict, InvalidRequest
from api.openapi_errors import error_responses
from api.text import PRINTABLE
from db.identity import User

router = APIRouter(prefix="/v1/auth", tags=["auth"], dependencies=[Depends(PUBLIC)])

# On every answer that carries a credential: no cache between us and the caller keeps it.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.post("/register", status_code=202, responses=error_responses(400, 413, 429))
def register(body: RegisterIn, request: Request, context: ContextDep) -> RegistrationAccepted:
    """Accepted, for every address: what happens next is in a message to the address."""
    email = normalise_email(body.email)
    context.throttle.hit("register", email, client_address(request))
    with context.sessions() as session, session.begin():
        start_registration(session, email, body.password, body.display_name, utc_now())
    return RegistrationAccepted(email=email)


@router.post("/confirm", status_code=201, responses=error_responses(400, 409, 413))
def confirm(body: ConfirmIn, context: ContextDep) -> ProfileOut:
    """Open the account: the code is the one the message to the address carried."""
    with context.sessions() as session, session.begin():
        try:
            user = complete_registration(session, body.code, utc_now())
        except CodeInvalid:
            message = "the code is not one we sent, was used, or has expired: register again"
            raise InvalidRequest("code_invalid", message, "code") from None
        except EmailTaken:
            message = "this address already has an account: sign in"
            raise Conflict("email_taken", message, "code") from None
        return profile_out(user)


@router.post("/token", responses=error_responses(400, 401, 413, 429))
def token(
    request: Request,
    response: Response,
    context: ContextDep,
    grant_type: Annotated[str, Form(max_length=32)],
    username: Annotated[str | None, Form(max_length=320, pattern=PRINTABLE)] = None,
    password: Annotated[str | None, Form(max_length=128)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
) -> TokenOut:
    """OAuth2 token endpoint (form-encoded, as the password flow prescribes).

    Answers with tokens are never cached (RFC 6749 5.1: Cache-Control: no-store).
    """
    if grant_type == "password":
        if not username or not password:
            raise InvalidRequest("credentials_missing", "send username and password", None)
        context.throttle.hit("sign-in", normalise_email(username), client_address(request))
    elif grant_type == "refresh_token":
        if not refresh_token:
            raise InvalidRequest("refresh_token_missing", "send refresh_token", "refresh_token")
    else:
        message = "grant_type is password or refresh_token"
        raise InvalidRequest("unsupported_grant_type", message, "grant_type")
    # The transaction commits even when the answer is "no": a reused refresh token
    # revokes all of its user's tokens, and that must stick.
    with context.sessions() as session, session.begin():
        if grant_type == "password":
            assert username is not None and password is not None
            user = authenticate(session, username, password, utc_now())
        else:
            assert refresh_token is not None
            user = redeem_refresh_token(session, refresh_token, utc_now())
        tokens = new_tokens(context, session, user) if user is not None else None
    if tokens is None:
        if grant_type == "password":
            raise Unauthenticated("invalid_credentials", "wrong email or password", None)
        raise Unauthenticated("invalid_refresh_token", "sign in again", "refresh_token")
    response.headers.update(NO_STORE)
    return tokens


def new_tokens(context: AppContext, session: Session, user: User) -> TokenOut:
    now, settings = utc_now(), context.settings
    lifetime = timedelta(seconds=settings.refresh_token_seconds)
    return TokenOut(
        access_token=issue_access_token(settings, user.id, user.role, now, user.token_version),
        expires_in=settings.access_token_seconds,
        refresh_token=issue_refresh_token(session, user.id, lifetime, now),
    )


def profile_out(user: User) -> ProfileOut:
    return ProfileOut.model_validate(user, from_attributes=True)
