"""Rotating the sandbox's WeChat Pay platform certificate, as WeChat Pay does every few years.

    POST /control/wechatpay/platform-certificate/rotate   {"overlap_seconds": 86400}
         -> {"serial_no": the new signer, "listed": every serial /v3/certificates lists}

Bearer-authenticated with the sandbox API key, like the sandbox's other routes that
are not WeChat Pay's own. 409 in public-key mode, which has no certificate.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from sandbox.deps import require_api_key
from sandbox.errors import SandboxError
from sandbox.wechatpay_keyring import keyring_for

router = APIRouter(
    prefix="/control/wechatpay",
    tags=["control"],
    dependencies=[Depends(require_api_key)],
)


class RotationInstruction(BaseModel):
    # How long the retiring certificate stays listed beside its successor.
    overlap_seconds: int = Field(default=24 * 3600, ge=0, le=365 * 24 * 3600)


class Rotation(BaseModel):
    serial_no: str
    listed: list[str]


@router.post("/platform-certificate/rotate")
async def rotate_platform_certificate(
    request: Request, instruction: RotationInstruction | None = None
) -> Rotation:
    keyring = keyring_for(request.app.state.settings)
    overlap = timedelta(seconds=(instruction or RotationInstruction()).overlap_seconds)
    now = datetime.now(UTC)
    try:
        issued = keyring.rotate(now, overlap)
    except ValueError as exc:
        raise SandboxError(409, "public_key_mode", str(exc)) from None
    return Rotation(serial_no=issued.serial_no, listed=[c.serial_no for c in keyring.listed(now)])
