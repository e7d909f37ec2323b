"""Buyers register and sign in (OAuth2 password flow); tokens are refreshed by rotation.

    POST /v1/auth/register   email + password -> a buyer account
    POST /v1/auth/token      grant_type=password (username, password) or
                             grant_type=refresh_token (refresh_token) -> access + refresh

Operators sign in here as well; they are created by `python -m api.manage`.
Both endpoints are throttled per account and per address (429 + Retry-After).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from sqlmodel import Session

from api.auth.caller import PUBLIC, Unauthenticated
from api.auth.refresh import issue_refresh_token, redeem_refresh_token
from api.auth.tokens import issue_access_token, utc_now
from api.auth.users import EmailTaken, authenticate, create_user, normalise_email
from api.auth_schemas import ProfileOut, RegisterIn, TokenOut
from api.deps import AppContext, ContextDep
from api.errors import Conflict, InvalidRequest
from api.openapi_errors import error_responses
from api.text import PRINTABLE
from db.identity import User

router = APIRouter(prefix="/v1/auth", tags=["auth"], dependencies=[Depends(PUBLIC)])

# On every answer that carries a credential: no cache between us and the caller keeps it.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/register", status_code=201, responses=error_responses(400, 409, 413, 429))
def register(body: RegisterIn, request: Request, context: ContextDep) -> ProfileOut:
    context.throttle.hit("register", normalise_email(body.email), _address(request))
    with context.sessions() as session, session.begin():
        try:
            user = create_user(
                session, body.email, body.password, "buyer", body.display_name, utc_now()
            )
        except EmailTaken:
            raise Conflict("email_taken", "an account with this email exists", "email") from None
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
        context.throttle.hit("sign-in", normalise_email(username), _address(request))
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
        tokens = _tokens(context, session, user) if user is not None else None
    if tokens is None:
        if grant_type == "password":
            raise Unauthenticated("invalid_credentials", "wrong email or password", None)
        raise Unauthenticated("invalid_refresh_token", "sign in again", "refresh_token")
    response.headers.update(NO_STORE)
    return tokens


def _tokens(context: AppContext, session: Session, user: User) -> TokenOut:
    now, settings = utc_now(), context.settings
    lifetime = timedelta(seconds=settings.refresh_token_seconds)
    return TokenOut(
        access_token=issue_access_token(settings, user.id, user.role, now),
        expires_in=settings.access_token_seconds,
        refresh_token=issue_refresh_token(session, user.id, lifetime, now),
    )


def profile_out(user: User) -> ProfileOut:
    return ProfileOut.model_validate(user, from_attributes=True)
