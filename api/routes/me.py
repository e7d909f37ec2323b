"""The signed-in person's own things: profile, password, notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import Session

from api.auth.caller import BuyerCaller, BuyerOrOperator, Caller
from api.auth.passwords import verify_password
from api.auth.rate_limit import client_address
from api.auth.tokens import utc_now
from api.auth.users import change_password
from api.auth_schemas import PasswordChange, ProfileOut, ProfileUpdate, TokenOut
from api.deps import ContextDep
from api.errors import InvalidRequest, NotFound
from api.openapi_errors import error_responses
from api.routes.auth import NO_STORE, new_tokens, profile_out
from api.services.notifications import (
    NotificationOut,
    NotificationPage,
    list_buyer_notifications,
    mark_read,
)
from db.identity import User

router = APIRouter(prefix="/v1/me", tags=["me"])


def _me(session: Session, caller: Caller) -> User:
    user = session.get(User, caller.id)
    if user is None:  # deleted since the token was issued
        raise NotFound("user_not_found", "the account no longer exists", None)
    return user


@router.get("", responses=error_responses(401, 403, 404))
def read_profile(caller: BuyerOrOperator, context: ContextDep) -> ProfileOut:
    with context.reads() as session:
        return profile_out(_me(session, caller))


@router.patch("", responses=error_responses(400, 401, 403, 404, 413))
def update_profile(body: ProfileUpdate, caller: BuyerOrOperator, context: ContextDep) -> ProfileOut:
    with context.sessions() as session, session.begin():
        user = _me(session, caller)
        user.display_name = body.display_name
        user.updated_at = utc_now()
        return profile_out(user)


@router.post("/password", responses=error_responses(400, 401, 403, 404, 413, 429))
def update_password(
    body: PasswordChange,
    caller: BuyerOrOperator,
    context: ContextDep,
    request: Request,
    response: Response,
) -> TokenOut:
    """Change the password. Every session ends (each refresh token revoked, each access
    token refused); the answer is a new pair of tokens, for the session that changed it.

    Each try counts against the account's sign-in throttle: whoever holds a stolen access
    token may guess the password here no faster than at sign-in.
    """
    with context.sessions() as session:
        email = _me(session, caller).email
    context.throttle.hit("sign-in", email, client_address(request))
    with context.sessions() as session, session.begin():
        user = _me(session, caller)
        if not verify_password(user.password_hash, body.current_password):
            message = "the current password is wrong"
            raise InvalidRequest("current_password_wrong", message, "current_password")
        change_password(session, user, body.new_password, utc_now())
        tokens = new_tokens(context, session, user)
    response.headers.update(NO_STORE)
    return tokens


@router.get("/notifications", responses=error_responses(400, 401, 403))
def list_notifications(
    caller: BuyerCaller,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> NotificationPage:
    """The buyer's notifications about their orders, newest first."""
    with context.reads() as session:
        return list_buyer_notifications(session, caller.id, limit, starting_after)


@router.post("/notifications/{notification_id}/read", responses=error_responses(401, 403, 404))
def read_notification(
    notification_id: str, caller: BuyerCaller, context: ContextDep
) -> NotificationOut:
    """Mark one read (a repeat keeps the first time); another buyer's answers 404."""
    with context.sessions() as session, session.begin():
        return mark_read(session, caller.id, notification_id)
