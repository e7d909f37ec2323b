"""Merchants' staff accounts for the dashboard (api.pages): an operator makes them; the
merchant's first is its owner, who adds more from the dashboard. API keys stay for
servers; staff sign in with email and password in a browser only."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, EmailStr

from api.auth.caller import OperatorCaller
from api.auth.staff import create_merchant_user
from api.auth.users import EmailTaken
from api.auth_schemas import Password
from api.deps import ContextDep
from api.errors import Conflict
from api.openapi_errors import error_responses
from api.routes.auth import NO_STORE
from api.routes.merchants import load_merchant
from api.services.records import now

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])


class MerchantUserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailStr
    password: Password


class MerchantUserOut(BaseModel):
    id: str
    merchant_id: str
    email: str
    is_owner: bool  # the merchant's first staff member: may add others
    created_at: datetime


@router.post(
    "/{merchant_id}/users", status_code=201, responses=error_responses(400, 401, 403, 404, 409, 413)
)
def create_staff(
    merchant_id: str,
    body: MerchantUserCreate,
    caller: OperatorCaller,
    context: ContextDep,
    response: Response,
) -> MerchantUserOut:
    """A staff member who signs in to the merchant dashboard (/dashboard/sign-in)."""
    response.headers.update(NO_STORE)
    with context.sessions() as session, session.begin():
        load_merchant(session, merchant_id)
        try:
            user = create_merchant_user(session, merchant_id, body.email, body.password, now())
        except EmailTaken:
            raise Conflict("email_taken", "this email has a staff account", "email") from None
        return MerchantUserOut.model_validate(user, from_attributes=True)
