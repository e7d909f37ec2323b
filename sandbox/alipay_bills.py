"""Alipay's bills: `alipay.data.dataservice.bill.downloadurl.query` and the file it points at.

    gateway method  biz_content {"bill_type": "trade" | "signcustomer", "bill_date": "yyyy-MM-dd"}
                    -> {"bill_download_url": ...}, signed like every gateway answer; a day
                    not published yet: 40004 isp.bill_not_exist
    GET /alipay/downloadBillFile.resource?bizType=&bizDates=&downloadFileName=&timestamp=&token=
                    the zip (`sandbox.bill_formats.alipay`); like Alipay's, the address needs
                    no signature but expires (30 s) and its token binds its parameters

A `corrupt_file` plant serves the zip cut short: its central directory (and so every
member's CRC) is gone, as a download broken off midway leaves it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response

from channels.alipay.protocol import SUCCESS
from channels.base import ChannelName
from sandbox.bill_formats import alipay as alipay_format
from sandbox.bills import BillDesk
from sandbox.errors import SandboxError
from settings import Settings

METHOD = "alipay.data.dataservice.bill.downloadurl.query"
BILL_TYPES = frozenset({"trade", "signcustomer"})
URL_LIFETIME_S = 30  # Alipay: the download address is valid for 30 seconds
_TOKEN_KEY = secrets.token_bytes(32)  # this process's: addresses die with it, as they expire

router = APIRouter(prefix="/alipay", tags=["alipay"])


def _error(code: str, msg: str, sub_code: str, sub_msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


async def download_url(request: Request, biz: dict[str, Any]) -> dict[str, Any]:
    """The gateway's answer node for the method: the address, or Alipay's refusal."""
    desk: BillDesk = request.app.state.bills
    bill_type = str(biz.get("bill_type", ""))
    try:
        day = date.fromisoformat(str(biz.get("bill_date", "")))
    except ValueError:
        day = None
    if bill_type not in BILL_TYPES or day is None:
        return _error(
            "40002", "Invalid Arguments", "isv.invalid-parameter", "bill_type or bill_date"
        )
    if not desk.ready(ChannelName.ALIPAY, day, time.time()):
        return _error("40004", "Business Failed", "isp.bill_not_exist", "账单不存在")
    settings: Settings = request.app.state.settings
    pid = settings.alipay.seller_id
    query = {
        "bizType": bill_type,
        "userId": pid,
        "fileType": "csv.zip",
        "bizDates": f"{day:%Y%m%d}",
        "downloadFileName": alipay_format.file_names(pid, day)[0],
        "timestamp": str(int(time.time())),
    }
    query["token"] = _token(query)
    base = settings.sandbox_base_url.rstrip("/")
    url = f"{base}/alipay/downloadBillFile.resource?{urlencode(query, quote_via=quote)}"
    return {"code": SUCCESS, "msg": "Success", "bill_download_url": url}


@router.get("/downloadBillFile.resource")
async def download_file(request: Request) -> Response:
    query = dict(request.query_params)
    given = query.pop("token", "")
    if not hmac.compare_digest(given, _token(query)):
        raise SandboxError(403, "invalid_token", "the download address is not Alipay's")
    if time.time() - int(query.get("timestamp", "0")) > URL_LIFETIME_S:
        raise SandboxError(403, "expired", "the download address has expired")
    desk: BillDesk = request.app.state.bills
    day = datetime.strptime(query["bizDates"], "%Y%m%d").date()
    entries = await desk.entries(ChannelName.ALIPAY, day)
    body = alipay_format.render(entries, query["userId"], day, datetime.now(UTC))
    if desk.plants.corrupts(ChannelName.ALIPAY, day):
        body = body[: len(body) // 2]
    disposition = f"attachment; filename*=UTF-8''{quote(query['downloadFileName'])}"
    return Response(
        body, media_type="application/zip", headers={"Content-Disposition": disposition}
    )


def _token(query: dict[str, str]) -> str:
    text = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    return hmac.new(_TOKEN_KEY, text.encode(), hashlib.sha256).hexdigest()
