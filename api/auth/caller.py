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

The database read of a credential costs a session and a thread hop of its own. A route
open to every role may take it into its own first session instead
(`AnyCallerCheckedInRoute`): the dependency then checks what needs no database (the
token's signature, expiry, claims) and hands over a Caller whose `unchecked` part the
route's session checks first, before it reads anything (`checked_in`, which
`api.auth.scope.order_for` calls). Only routes every role may call can wait: a role
check cannot come before the 401 of a stale token.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from api.auth.api_keys import looks_like_api_key, merchant_for_key
from api.auth.tokens import InvalidToken, TokenClaims, read_access_token
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
class Unchecked:
    """The part of a credential still to be checked in the route's own session."""

    token_version: int | None = None  # an access token's: must still be its user's
    api_key: str | None = None  # a merchant's key: must name a live key


@dataclass(frozen=True)
class Caller:
    role: Role
    id: str  # the user id (buyer, operator) or the merchant id ("" until a key is checked)
    # Set only by AnyCallerCheckedInRoute: `checked_in(session, caller)` before any use.
    unchecked: Unchecked | None = field(default=None, compare=False, repr=False)

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


def _unchecked_caller(context: AppContext, credential: str) -> Caller | None:
    """The caller a credential claims to be, from what needs no database; None: refused."""
    if looks_like_api_key(credential):
        return Caller(Role.MERCHANT, "", Unchecked(api_key=credential))
    claims = _claims(context, credential)
    if claims is None:
        return None
    return Caller(Role(claims.role), claims.subject, Unchecked(token_version=claims.version))


def _claims(context: AppContext, credential: str) -> TokenClaims | None:
    try:
        return read_access_token(context.settings, credential)
    except InvalidToken as error:
        logger.info("refused an access token: %s", error)  # the reason, never the token
        return None


async def _identify(context: AppContext, credential: str) -> Caller | None:
    caller = _unchecked_caller(context, credential)
    if caller is None:
        return None
    return await asyncio.to_thread(_checked_in_own_session, context, caller)


def _checked_in_own_session(context: AppContext, caller: Caller) -> Caller | None:
    with context.reads() as session:
        return _checked(session, caller)


# Built once (every request with an access token asks): see db.payments.
_TOKEN_VERSION = select(User.token_version).where(col(User.id) == bindparam("user_id"))


def _checked(session: Session, caller: Caller) -> Caller | None:
    """The caller once its credential holds in the database (one primary-key or prefix
    read); None when it does not."""
    pending = caller.unchecked
    if pending is None:
        return caller
    if pending.api_key is not None:
        merchant_id = merchant_for_key(session, pending.api_key)
        return Caller(Role.MERCHANT, merchant_id) if merchant_id else None
    version = session.scalar(_TOKEN_VERSION, {"user_id": caller.id})
    if version != pending.token_version:
        logger.info("refused an access token: its user's password changed, or the user is gone")
        return None
    return Caller(caller.role, caller.id)


def checked_in(session: Session, caller: Caller) -> Caller:
    """The caller of an AnyCallerCheckedInRoute route, checked in the route's own session
    before it reads anything else; a caller already checked is returned as it is."""
    checked = _checked(session, caller)
    if checked is None:
        raise _invalid_credentials()
    return checked


def _invalid_credentials() -> Unauthenticated:
    return Unauthenticated(
        "invalid_credentials",
        "send a valid access token or API key as Authorization: Bearer ...",
        "Authorization",
    )


class Access:
    """A route's access rule: which roles may call it. Resolves to the Caller (with
    `check_in_route`, to one the route's own session checks: see the module docstring)."""

    def __init__(self, *roles: Role, check_in_route: bool = False) -> None:
        self.roles = frozenset(roles)
        if check_in_route and self.roles != frozenset(Role):
            raise ValueError("only a route every role may call can check its caller itself")
        self.check_in_route = check_in_route

    async def __call__(
        self, context: ContextDep, credential: Annotated[str | None, Depends(_bearer)]
    ) -> Caller:
        if not credential:
            caller = None
        elif self.check_in_route:
            caller = _unchecked_caller(context, credential)
        else:
            caller = await _identify(context, credential)
        if caller is None:
            if credential:
                raise _invalid_credentials()
            raise Unauthenticated(
                "credentials_missing",
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

    async def __call__(self) -> None:  # async: a plain `def` costs a thread hop (api.deps)
        return None


PUBLIC = Public()
ANYONE = Access(Role.BUYER, Role.MERCHANT, Role.OPERATOR)
ANYONE_CHECKED_IN_ROUTE = Access(Role.BUYER, Role.MERCHANT, Role.OPERATOR, check_in_route=True)
BUYER = Access(Role.BUYER)
OPERATOR = Access(Role.OPERATOR)
BUYER_OR_OPERATOR = Access(Role.BUYER, Role.OPERATOR)
MERCHANT_OR_OPERATOR = Access(Role.MERCHANT, Role.OPERATOR)

AnyCaller = Annotated[Caller, Depends(ANYONE)]
AnyCallerCheckedInRoute = Annotated[Caller, Depends(ANYONE_CHECKED_IN_ROUTE)]
BuyerCaller = Annotated[Caller, Depends(BUYER)]
OperatorCaller = Annotated[Caller, Depends(OPERATOR)]
BuyerOrOperator = Annotated[Caller, Depends(BUYER_OR_OPERATOR)]
MerchantOrOperator = Annotated[Caller, Depends(MERCHANT_OR_OPERATOR)]
