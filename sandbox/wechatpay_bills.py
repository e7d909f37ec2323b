"""WeChat Pay's bills (API v3), simulated at /wechatpay beside its payments API.

    GET /wechatpay/v3/bill/tradebill?bill_date=&bill_type=ALL[&tar_type=GZIP]   -> BillUrl
    GET /wechatpay/v3/bill/fundflowbill?bill_date=&account_type=BASIC[&tar_type] -> BillUrl
    GET /wechatpay/v3/billdownload/file?token=...                               -> the file

Requests are signed by the merchant as for every API v3 call (401 SIGN_ERROR
otherwise); the JSON answers are signed by the platform key. The file's answer is
not signed, as WeChat Pay's is not: the merchant checks it against `hash_value`
(SHA1). A day not published yet answers 400 STATEMENT_CREATING; a published day
without a transaction 400 NO_STATEMENT_EXIST, as WeChat Pay makes no bill for it.
A `corrupt_file` plant makes `hash_value` disagree with the file served.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import secrets
import time
from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from channels.base import ChannelName
from channels.wechatpay import bill_wire
from sandbox.bill_formats import wechatpay as wechatpay_format
from sandbox.bills import BillDesk
from sandbox.wechatpay_auth import RequestSignatureError
from sandbox.wechatpay_front import WeChatError, _authenticate, _error_body, _exchange, _settings

router = APIRouter(prefix="/wechatpay", tags=["wechatpay"])
WECHATPAY = ChannelName.WECHATPAY
URL_LIFETIME_S = 30  # WeChat Pay: a download_url is valid for 30 seconds
_TOKEN_KEY = secrets.token_bytes(32)
_KINDS = {"tradebill": ("bill_type", "ALL"), "fundflowbill": ("account_type", "BASIC")}


@router.get("/v3/bill/tradebill")
async def trade_bill(request: Request) -> Response:
    return await _bill_url(request, "tradebill")


@router.get("/v3/bill/fundflowbill")
async def fund_flow_bill(request: Request) -> Response:
    return await _bill_url(request, "fundflowbill")


async def _bill_url(request: Request, kind: str) -> Response:
    async def act(_: bytes) -> BaseModel:
        day = _bill_date(request.query_params.get("bill_date", ""))
        option, default = _KINDS[kind]
        token_fields = {
            "kind": kind,
            "day": day.isoformat(),
            option: request.query_params.get(option, default),
            "tar": request.query_params.get("tar_type", ""),
            "at": str(int(time.time())),
        }
        body = await _file(request, token_fields)
        desk: BillDesk = request.app.state.bills
        digest = hashlib.sha1(body, usedforsecurity=False)
        if desk.plants.corrupts(WECHATPAY, day):
            digest.update(b"\n")  # the file served is not the one hashed
        token_fields["token"] = _token(token_fields)
        base = _settings(request).sandbox_base_url.rstrip("/")
        url = f"{base}/wechatpay/v3/billdownload/file?{urlencode(token_fields)}"
        return bill_wire.BillUrl(hash_value=digest.hexdigest(), download_url=url)

    return await _exchange(request, act)


@router.get("/v3/billdownload/file")
async def download(request: Request) -> Response:
    raw = await request.body()
    fields = dict(request.query_params)
    given = fields.pop("token", "")
    try:
        _authenticate(request, raw)
        if not hmac.compare_digest(given, _token(fields)):
            raise WeChatError(400, "PARAM_ERROR", "token 无效")
        if time.time() - int(fields.get("at", "0")) > URL_LIFETIME_S:
            raise WeChatError(400, "PARAM_ERROR", "下载地址已过期")
        body = await _file(request, fields)
    except RequestSignatureError as error:
        return _unsigned_error(401, "SIGN_ERROR", f"签名错误: {error}")
    except WeChatError as error:
        return _unsigned_error(error.status_code, error.code, error.message)
    media_type = "application/gzip" if fields.get("tar") == "GZIP" else "text/plain"
    return Response(body, media_type=media_type)


def _unsigned_error(status_code: int, code: str, message: str) -> Response:
    return Response(_error_body(code, message), status_code, media_type="application/json")


async def _file(request: Request, fields: dict[str, str]) -> bytes:
    """The bill file for the fields of a download (raises WeChatError when there is none)."""
    desk: BillDesk = request.app.state.bills
    day = _bill_date(fields["day"])
    if not desk.ready(WECHATPAY, day, time.time()):
        raise WeChatError(400, bill_wire.STATEMENT_CREATING, "账单生成中, 请稍后再试")
    entries = await desk.entries(WECHATPAY, day)
    if not entries:
        raise WeChatError(400, bill_wire.NO_STATEMENT_EXIST, "账单文件不存在")
    settings = _settings(request)
    if fields["kind"] == "fundflowbill":
        text = wechatpay_format.render_fund_flow(entries)
    else:
        text = wechatpay_format.render(
            entries,
            appid=settings.wechatpay.appid,
            mchid=settings.wechatpay.mchid,
            fee_rate=desk.fee_rate(WECHATPAY),
        )
    return gzip.compress(text, mtime=0) if fields.get("tar") == "GZIP" else text


def _bill_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise WeChatError(400, "PARAM_ERROR", "bill_date 格式错误: yyyy-MM-dd") from None


def _token(fields: dict[str, str]) -> str:
    text = "&".join(f"{k}={v}" for k, v in sorted(fields.items()))
    return hmac.new(_TOKEN_KEY, text.encode(), hashlib.sha256).hexdigest()
