"""Alipay's open-platform gateway protocol, as pure functions (no I/O).

    request    one form POST to the gateway: common parameters (app_id, method,
               format=JSON, charset=utf-8, sign_type=RSA2, timestamp in Beijing
               time, version=1.0, notify_url) + `biz_content` (JSON), RSA2-signed
               over every parameter but `sign`
    response   `{"<method with _>_response": {...}, "sign": "..."}`; the signature
               covers the exact text of the response node, so it is checked on
               the raw bytes before the node is believed
    codes      10000 success; 20000 service unavailable (retry); 40004 a business
               refusal whose `sub_code` says why (ACQ.TRADE_NOT_EXIST, ...);
               40001 / 40002 / 40006 / 20001 bad or unauthorised requests
    notify     a form POST signed over every field but `sign` and `sign_type`;
               answered with exactly `success`

Amounts are yuan strings, converted exactly by `channels.alipay.amounts`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay.signing import sign_params
from channels.errors import (
    ChannelError,
    ChannelRejected,
    ChannelUnavailable,
    PaymentNotFound,
)
from channels.rsa2 import sign, verify

PRECREATE = "alipay.trade.precreate"
PAGE_PAY = "alipay.trade.page.pay"
QUERY = "alipay.trade.query"
CLOSE = "alipay.trade.close"
REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"

SUCCESS = "10000"
# Answers Alipay documents as "try again": the gateway is busy, or a system error.
_RETRY_CODES = frozenset({"20000"})
_RETRY_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})
NOT_FOUND_SUB_CODES = frozenset({"ACQ.TRADE_NOT_EXIST"})

BEIJING = timezone(timedelta(hours=8))
MAX_ID_LENGTH = 64  # out_trade_no and out_request_no
# What Alipay documents for a merchant's out_trade_no (domain.keys.payment_reference fits).
OUT_TRADE_NO = re.compile(r"[A-Za-z0-9_]{1,64}")


def gateway_timestamp(now: datetime) -> str:
    """Alipay wants `yyyy-MM-dd HH:mm:ss` in Beijing time."""
    return now.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def parse_gateway_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING).astimezone(UTC)


def signed_request(
    *,
    app_id: str,
    method: str,
    biz_content: Mapping[str, Any],
    key: rsa.RSAPrivateKey,
    now: datetime,
    notify_url: str | None = None,
) -> dict[str, str]:
    params = {
        "app_id": app_id,
        "method": method,
        "format": "JSON",
        "charset": "utf-8",
        "timestamp": gateway_timestamp(now),
        "version": "1.0",
        "biz_content": json.dumps(biz_content, ensure_ascii=False, separators=(",", ":")),
    }
    if notify_url:
        params["notify_url"] = notify_url
    return sign_params(params, key)


def response_key(method: str) -> str:
    return method.replace(".", "_") + "_response"


def signed_response(method: str, node: Mapping[str, Any], key: rsa.RSAPrivateKey) -> str:
    """The gateway's answer text: the node and the RSA2 signature of its exact JSON text."""
    text = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
    return f'{{"{response_key(method)}":{text},"sign":"{sign(text, key)}"}}'


def read_response(method: str, raw: bytes, alipay_key: rsa.RSAPublicKey) -> dict[str, Any]:
    """The verified response node for `method`, or a ChannelError.

    A success must be signed by Alipay; an answer whose signature is present and
    wrong is never believed. An unsigned error is taken as the error it says it
    is (it cannot make us believe anything happened).
    """
    what = f"alipay {method}"
    try:
        text = raw.decode("utf-8")
        document = json.loads(text)
        key = response_key(method) if response_key(method) in document else "error_response"
        node_text = _raw_node(text, key)
        node = json.loads(node_text) if node_text is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
        node = None
    if node is None or node != document.get(key):  # the signed text must be the node read
        raise ChannelUnavailable(f"{what}: unreadable response", code="invalid_response")
    assert node_text is not None
    signature = document.get("sign")
    signed = isinstance(signature, str) and verify(node_text, signature, alipay_key)
    if signature is not None and not signed:
        raise ChannelUnavailable(f"{what}: response signature invalid", code="invalid_signature")
    if not isinstance(node, dict):
        raise ChannelUnavailable(f"{what}: unreadable response", code="invalid_response")
    if node.get("code") == SUCCESS and not signed:
        raise ChannelUnavailable(f"{what}: unsigned success", code="invalid_signature")
    raise_for_code(what, node)
    return node


def raise_for_code(what: str, node: Mapping[str, Any]) -> None:
    code = str(node.get("code", ""))
    if code == SUCCESS:
        return
    sub_code = str(node.get("sub_code") or f"alipay_{code or 'no_code'}")
    message = f"{what}: {code} {sub_code}"
    error: type[ChannelError]
    if code in _RETRY_CODES or sub_code in _RETRY_SUB_CODES:
        error = ChannelUnavailable
    elif sub_code in NOT_FOUND_SUB_CODES:
        error = PaymentNotFound
    else:
        error = ChannelRejected
    raise error(message, code=sub_code)


_KEY_START = re.compile(r'"(?P<key>[a-z_]+)"\s*:\s*')


def _raw_node(text: str, key: str) -> str | None:
    """The exact text of the top-level value under `key`: what Alipay signed."""
    decoder = json.JSONDecoder()
    for match in _KEY_START.finditer(text):
        if match.group("key") != key:
            continue
        try:
            _, end = decoder.raw_decode(text, match.end())
        except json.JSONDecodeError:
            return None
        return text[match.end() : end]
    return None
