"""Who is calling, and whether their role may call this route at all.

Every route declares its access with one of the dependencies below; a route
without one is caught by the role-by-endpoint test (tests/api/test_access_matrix.py),
which reads the declarations off the app's route table:

    caller: BuyerOrOperator            the role check; the handler gets the Caller
    dependencies=[Depends(PUBLIC)]     signed callbacks, sign-in, health

Credentials arrive as `Authorization: Bearer ...`: a JWT access token (buyers and
operators; honoured while its token version is the user's, one primary-key read) or an
API key (merchants, `psk_...`). No credential answers 401; a
role the route does not serve answers 403. Whether the caller may see a given
object (their own order, say) is the handler's question, and "no" is 404.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import col, select

from api.auth.api_keys import looks_like_api_key, merchant_for_key
from api.auth.tokens import InvalidToken, read_access_token
from api.deps import AppContext, ContextDep
from api.errors import ApiError
from db.identity import User

logger = logging.getLogger(__name__)

# Declares the bearer scheme in the OpenAPI document (the docs' Authorize button).
_bearer = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


class Role(enum.StrEnum):
    BUYER = "buyer"
    MERCHANT = "merchant"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Caller:
    role: Role
    id: str  # the user id (buyer, operator) or the merchant id

    @property
    def is_operator(self) -> bool:
        return self.role == Role.OPERATOR


class Unauthenticated(ApiError):
    status_code = 401
    error_type = "authentication_error"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    status_code = 403
    error_type = "permission_error"


async def _identify(context: AppContext, credential: str) -> Caller | None:
    if looks_like_api_key(credential):
        merchant_id = await asyncio.to_thread(_merchant_for_key, context, credential)
        return Caller(Role.MERCHANT, merchant_id) if merchant_id else None
    try:
        claims = read_access_token(context.settings, credential)
    except InvalidToken as error:
        logger.info("refused an access token: %s", error)  # the reason, never the token
        return None
    if await asyncio.to_thread(_token_version, context, claims.subject) != claims.version:
        logger.info("refused an access token: its user's password changed, or the user is gone")
        return None
    return Caller(Role(claims.role), claims.subject)


def _merchant_for_key(context: AppContext, key: str) -> str | None:
    with context.reads() as session:
        return merchant_for_key(session, key)


def _token_version(context: AppContext, user_id: str) -> int | None:
    """The user's current token version, or None for no such user: one primary-key read."""
    with context.reads() as session:
        return session.scalar(select(User.token_version).where(col(User.id) == user_id))


class Access:
    """A route's access rule: which roles may call it. Resolves to the Caller."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(
        self, context: ContextDep, credential: Annotated[str | None, Depends(_bearer)]
    ) -> Caller:
        caller = await _identify(context, credential) if credential else None
        if caller is None:
            raise Unauthenticated(
                "invalid_credentials" if credential else "credentials_missing",
                "send a valid access token or API key as Authorization: Bearer ...",
                "Authorization",
            )
        if caller.role not in self.roles:
            allowed = ", ".join(sorted(self.roles))
            raise Forbidden("role_not_allowed", f"this endpoint is for: {allowed}", None)
        return caller


class Public:
    """The declaration of a route anyone may call (its own checks, if any, are inside)."""

    roles = frozenset(Role)

    def __call__(self) -> None:
        return None


PUBLIC = Public()
ANYONE = Access(Role.BUYER, Role.MERCHANT, Role.OPERATOR)
BUYER = Access(Role.BUYER)
OPERATOR = Access(Role.OPERATOR)
BUYER_OR_OPERATOR = Access(Role.BUYER, Role.OPERATOR)
MERCHANT_OR_OPERATOR = Access(Role.MERCHANT, Role.OPERATOR)

AnyCaller = Annotated[Caller, Depends(ANYONE)]
BuyerCaller = Annotated[Caller, Depends(BUYER)]
OperatorCaller = Annotated[Caller, Depends(OPERATOR)]
BuyerOrOperator = Annotated[Caller, Depends(BUYER_OR_OPERATOR)]
MerchantOrOperator = Annotated[Caller, Depends(MERCHANT_OR_OPERATOR)]
