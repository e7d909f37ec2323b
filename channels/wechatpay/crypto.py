"""WeChat Pay API v3 signatures and notification resources.

    request   Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,
              signature=..,timestamp=..,serial_no=..  over
              "{METHOD}\\n{path?query}\\n{timestamp}\\n{nonce}\\n{body}\\n"
    response / notification
              Wechatpay-Signature over "{Wechatpay-Timestamp}\\n{Wechatpay-Nonce}\\n{body}\\n",
              by the platform key named in Wechatpay-Serial (a certificate's serial,
              or a PUB_KEY_ID_... in public-key mode), of the Wechatpay-Signature-Type
              WECHATPAY2-SHA256-RSA2048 (another or none is refused, as the wechatpayv3
              SDK refuses it); timestamps more than 5 minutes off are refused, and so
              are the SIGNTEST probes WeChat Pay sends to check that a merchant really
              verifies
    resource  AEAD_AES_256_GCM with the APIv3 key (32 bytes), its nonce and
              associated_data; the ciphertext carries the 16-byte tag at its end

SHA256withRSA is PKCS#1 v1.5 over SHA-256; every primitive comes from `cryptography`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from channels.errors import NotificationFormatError, NotificationSignatureError
from channels.rsa2 import sign, verify

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"  # the only Wechatpay-Signature-Type there is
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
TOLERANCE_SECONDS = 300


def request_message(method: str, path: str, timestamp: int, nonce: str, body: str) -> str:
    return f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n{body}\n"


def authorization(
    *,
    mchid: str,
    serial_no: str,
    key: rsa.RSAPrivateKey,
    method: str,
    path: str,
    body: str,
    timestamp: int,
    nonce: str,
) -> str:
    signature = sign(request_message(method, path, timestamp, nonce, body), key)
    fields = {
        "mchid": mchid,
        "nonce_str": nonce,
        "signature": signature,
        "timestamp": str(timestamp),
        "serial_no": serial_no,
    }
    return AUTH_SCHEME + " " + ",".join(f'{k}="{v}"' for k, v in fields.items())


def response_message(timestamp: str, nonce: str, body: str) -> str:
    return f"{timestamp}\n{nonce}\n{body}\n"


def signer_serial(headers: Mapping[str, str]) -> str:
    """The Wechatpay-Serial a response or notification names ("" when it names none)."""
    return next((v for k, v in headers.items() if k.lower() == "wechatpay-serial"), "")


def verify_signed(
    headers: Mapping[str, str],
    body: bytes,
    platform_keys: Mapping[str, rsa.RSAPublicKey],
    now: int,
) -> None:
    """Check a response's or notification's signature; NotificationSignatureError if not good."""
    lowered = {k.lower(): v for k, v in headers.items()}
    timestamp = lowered.get("wechatpay-timestamp", "")
    nonce = lowered.get("wechatpay-nonce", "")
    signature = lowered.get("wechatpay-signature", "")
    serial = lowered.get("wechatpay-serial", "")
    if not (timestamp and nonce and signature and serial):
        raise NotificationSignatureError("missing Wechatpay-* signature headers")
    if lowered.get("wechatpay-signature-type", "") != SIGNATURE_TYPE:
        raise NotificationSignatureError("missing or unknown Wechatpay-Signature-Type")
    if signature.startswith(PROBE_PREFIX):
        raise NotificationSignatureError("a signature probe, refused as it must be")
    key = platform_keys.get(serial)
    if key is None:
        raise NotificationSignatureError("unknown platform certificate serial")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise NotificationSignatureError("timestamp outside the tolerance", code="signature_stale")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NotificationSignatureError("body is not UTF-8") from None
    if not verify(response_message(timestamp, nonce, text), signature, key):
        raise NotificationSignatureError("signature does not verify")


def encrypt_resource(api_v3_key: bytes, nonce: str, associated_data: str, plain: bytes) -> str:
    sealed = AESGCM(api_v3_key).encrypt(nonce.encode(), plain, associated_data.encode())
    return base64.b64encode(sealed).decode()


def decrypt_resource(api_v3_key: bytes, nonce: str, associated_data: str, ciphertext: str) -> bytes:
    """The plaintext of a notification's `resource`; NotificationFormatError if it won't open."""
    try:
        sealed = base64.b64decode(ciphertext, validate=True)
        return AESGCM(api_v3_key).decrypt(nonce.encode(), sealed, associated_data.encode())
    except (InvalidTag, ValueError) as error:
        raise NotificationFormatError("resource does not decrypt") from error
