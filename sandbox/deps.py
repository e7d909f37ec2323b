"""Dependencies shared by the sandbox's routers."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from sandbox.errors import SandboxError
from sandbox.payout_service import PayoutService
from sandbox.service import SandboxService


async def get_service(request: Request) -> SandboxService:
    service: SandboxService = request.app.state.service
    return service


ServiceDep = Annotated[SandboxService, Depends(get_service)]


async def get_payouts(request: Request) -> PayoutService:
    payouts: PayoutService = request.app.state.payouts
    return payouts


PayoutServiceDep = Annotated[PayoutService, Depends(get_payouts)]


async def require_api_key(request: Request) -> None:
    """The channel API wants `Authorization: Bearer <api key>`; compare in constant time."""
    expected = f"Bearer {request.app.state.api_key.get_secret_value()}".encode()
    given = request.headers.get("authorization", "").encode("latin-1", "replace")
    if not hmac.compare_digest(expected, given):
        raise SandboxError(401, "unauthorized", "missing or wrong API key")
