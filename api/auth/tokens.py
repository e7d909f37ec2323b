"""Access tokens: short-lived JWTs, HS256 only, with issuer, audience and expiry checked.

The algorithm is pinned on decode, so `alg=none` or an RS/HS confusion is refused
as any other bad token is. A token names its user's token version (`ver`), which a
password change moves on: api.auth.caller refuses a token of an earlier one. Refresh
tokens are not JWTs: they are random strings kept (as digests) in the database, so they
can be revoked (see `refresh.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from settings import Settings

ALGORITHM = "HS256"
_REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "role", "ver"]


class InvalidToken(Exception):
    """The token is not one we issued, or no longer valid; the reason stays in the server."""


@dataclass(frozen=True)
class TokenClaims:
    subject: str  # the user id
    role: str  # buyer | operator
    version: int  # the user's token version when issued: refused once it has moved on


def issue_access_token(
    settings: Settings, user_id: str, role: str, now: datetime, version: int = 0
) -> str:
    """A token for the user at their token `version` (a new user's is 0)."""
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "role": role,
        "ver": version,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.access_token_seconds)).timestamp()),
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def read_access_token(settings: Settings, token: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": _REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(type(error).__name__) from None
    subject, role, version = claims["sub"], claims["role"], claims["ver"]
    if not isinstance(subject, str) or role not in ("buyer", "operator"):
        raise InvalidToken("claims")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidToken("claims")
    return TokenClaims(subject=subject, role=role, version=version)


def utc_now() -> datetime:
    return datetime.now(UTC)
