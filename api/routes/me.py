"""The signed-in person's own things: profile, password, notifications."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel import Session, col, select

from api.auth.caller import BuyerCaller, BuyerOrOperator, Caller
from api.auth.passwords import verify_password
from api.auth.tokens import utc_now
from api.auth.users import change_password
from api.auth_schemas import (
    NotificationOut,
    NotificationPage,
    PasswordChange,
    ProfileOut,
    ProfileUpdate,
)
from api.deps import ContextDep
from api.errors import InvalidRequest, NotFound
from api.routes.auth import profile_out
from db.identity import User
from db.tables import PartyNotification

router = APIRouter(prefix="/v1/me", tags=["me"])


def _me(session: Session, caller: Caller) -> User:
    user = session.get(User, caller.id)
    if user is None:  # deleted since the token was issued
        raise NotFound("user_not_found", "the account no longer exists", None)
    return user


@router.get("")
def read_profile(caller: BuyerOrOperator, context: ContextDep) -> ProfileOut:
    with context.sessions() as session:
        return profile_out(_me(session, caller))


@router.patch("")
def update_profile(body: ProfileUpdate, caller: BuyerOrOperator, context: ContextDep) -> ProfileOut:
    with context.sessions() as session, session.begin():
        user = _me(session, caller)
        user.display_name = body.display_name
        user.updated_at = utc_now()
        return profile_out(user)


@router.post("/password", status_code=204)
def update_password(body: PasswordChange, caller: BuyerOrOperator, context: ContextDep) -> Response:
    """Change the password; every refresh token is revoked (other sessions sign in again)."""
    with context.sessions() as session, session.begin():
        user = _me(session, caller)
        if not verify_password(user.password_hash, body.current_password):
            message = "the current password is wrong"
            raise InvalidRequest("current_password_wrong", message, "current_password")
        change_password(session, user, body.new_password, utc_now())
    return Response(status_code=204)


@router.get("/notifications")
def list_notifications(
    caller: BuyerCaller,
    context: ContextDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> NotificationPage:
    """The buyer's notifications about their orders, newest first."""
    query = (
        select(PartyNotification)
        .where(PartyNotification.recipient == "buyer", PartyNotification.recipient_id == caller.id)
        .order_by(col(PartyNotification.created_at).desc(), col(PartyNotification.id).desc())
    )
    with context.sessions() as session:
        if starting_after is not None:
            after = session.get(PartyNotification, starting_after)
            if after is None or after.recipient_id != caller.id:
                raise NotFound("notification_not_found", "no such notification", "starting_after")
            query = query.where(
                (col(PartyNotification.created_at) < after.created_at)
                | (
                    (col(PartyNotification.created_at) == after.created_at)
                    & (col(PartyNotification.id) < after.id)
                )
            )
        rows = session.exec(query.limit(limit + 1)).all()
        page = [NotificationOut.model_validate(row, from_attributes=True) for row in rows[:limit]]
    has_more = len(rows) > limit
    return NotificationPage(
        data=page, has_more=has_more, next_cursor=page[-1].id if has_more else None
    )
