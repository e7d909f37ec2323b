"""The bank-transfer API our platform calls: `/bank/api/payouts`, bearer-authenticated.

Every route is one `PayoutService` call; errors are `SandboxError`s rendered by
`errors.install_error_handlers`, in the same shape as the payment API's.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from sandbox.deps import PayoutServiceDep, require_api_key
from sandbox.protocol import Payout, PayoutCreate

router = APIRouter(
    prefix="/bank/api",
    tags=["bank api"],
    dependencies=[Depends(require_api_key)],
)


@router.post("/payouts")
async def create_payout(body: PayoutCreate, payouts: PayoutServiceDep) -> Payout:
    return await payouts.create_payout(body)


@router.get("/payouts/{payout_id}")
async def get_payout(payout_id: str, payouts: PayoutServiceDep) -> Payout:
    return await payouts.get_payout(payout_id)
