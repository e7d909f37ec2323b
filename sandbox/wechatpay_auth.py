"""WeChat Pay's side of the API v3 signatures, as the sandbox plays it.

    verify_request     a merchant's `Authorization: WECHATPAY2-SHA256-RSA2048 ...`
                       must name our mchid and the merchant certificate serial,
                       be no more than 5 minutes off, and verify with the
                       merchant's public key over the exact method, raw path
                       and query, and raw body bytes received
    signed_headers     the Wechatpay-Timestamp/-Nonce/-Signature/-Serial/-Signature-Type
                       that every answer and notification carries, by the platform key

The merchant's half of the same protocol is `channels.wechatpay.crypto`; the
message formats come from there, so the two sides cannot disagree on them.
"""

from __future__ import annotations

import re
import secrets

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.rsa2 import sign, verify
from channels.wechatpay.crypto import (
    AUTH_SCHEME,
    SIGNATURE_TYPE,
    TOLERANCE_SECONDS,
    request_message,
    response_message,
)

_FIELD = re.compile(r'(\w+)="([^"]*)"')
_REQUIRED = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")


class RequestSignatureError(Exception):
    """The request's Authorization does not prove it came from our merchant (401 SIGN_ERROR)."""


def verify_request(
    authorization: str,
    *,
    method: str,
    path: str,
    body: bytes,
    mchid: str,
    serial_no: str,
    merchant_key: rsa.RSAPublicKey,
    now: int,
) -> None:
    """Check one request's Authorization header; `path` is the raw path with its query."""
    scheme, _, rest = authorization.partition(" ")
    if scheme != AUTH_SCHEME:
        raise RequestSignatureError(f"authorization scheme must be {AUTH_SCHEME}")
    fields = dict(_FIELD.findall(rest))
    if any(not fields.get(name) for name in _REQUIRED):
        raise RequestSignatureError("authorization lacks a field")
    if fields["mchid"] != mchid:
        raise RequestSignatureError("unknown mchid")
    if fields["serial_no"] != serial_no:
        raise RequestSignatureError("unknown merchant certificate serial")
    timestamp = fields["timestamp"]
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise RequestSignatureError("timestamp outside the tolerance")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestSignatureError("body is not UTF-8") from None
    message = request_message(method, path, int(timestamp), fields["nonce_str"], text)
    if not verify(message, fields["signature"], merchant_key):
        raise RequestSignatureError("signature does not verify")


def signed_headers(
    body: bytes, *, serial_no: str, platform_key: rsa.RSAPrivateKey, now: int
) -> dict[str, str]:
    """Fresh timestamp and nonce, so that every answer and attempt is signed anew."""
    nonce = secrets.token_hex(16).upper()
    signature = sign(response_message(str(now), nonce, body.decode("utf-8")), platform_key)
    return {
        "Wechatpay-Timestamp": str(now),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": serial_no,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,  # wechatpayv3 refuses an answer without it
    }
