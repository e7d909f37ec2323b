"""Alipay RSA2 and WeChat Pay v3 protocol pieces: known answers, tampering, exact amounts.

The vectors (tests/channels/vectors/) were made once with a test-only key; the
Alipay request signature was checked against `openssl dgst -sha256 -sign` when
they were made. PKCS#1 v1.5 is deterministic, so signing again must give the same
bytes: a change to canonicalisation or encoding fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from channels import rsa2
from channels.alipay.amounts import AmountFormatError, fen_to_yuan, yuan_to_fen
from channels.alipay.signing import (
    REQUEST_EXCLUDED,
    canonical,
    sign_params,
    verify_notification,
)
from channels.errors import NotificationFormatError, NotificationSignatureError
from channels.wechatpay.crypto import (
    authorization,
    decrypt_resource,
    verify_signed,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "channel_protocols.json").read_text()
)
PRIVATE = rsa2.load_private_key(VECTORS["private_key_pem"])
PUBLIC = rsa2.load_public_key(VECTORS["public_key_pem"])
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- Alipay amounts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fen"),
    [("0.01", 1), ("88.88", 8888), ("1", 100), ("0.5", 50), ("100000000.00", 10_000_000_000)],
)
def test_yuan_strings_convert_exactly(text: str, fen: int) -> None:
    assert yuan_to_fen(text) == fen
    assert yuan_to_fen(fen_to_yuan(fen)) == fen


@pytest.mark.parametrize(
    "text",
    [
        "0.00",
        "0",
        "0.001",
        "1.234",
        "-1.00",
        "+1.00",
        "1e2",
        " 1.00",
        "01.00",
        "1.",
        ".5",
        "",
        "100000000.01",
        "1,00",
        "\uff11.00",
    ],
)
def test_anything_but_a_plain_yuan_amount_is_refused(text: str) -> None:
    with pytest.raises(AmountFormatError):
        yuan_to_fen(text)


def test_fen_to_yuan_refuses_floats_and_out_of_range() -> None:
    assert fen_to_yuan(5) == "0.05"
    with pytest.raises(TypeError):
        fen_to_yuan(88.88)  # type: ignore[arg-type]
    for fen in (0, -1, 10_000_000_001):
        with pytest.raises(AmountFormatError):
            fen_to_yuan(fen)


# -- Alipay RSA2 -----------------------------------------------------------------


def test_alipay_request_signature_is_the_known_answer() -> None:
    vector = VECTORS["alipay_request"]
    signed = sign_params(vector["params"], PRIVATE)
    assert canonical(signed, REQUEST_EXCLUDED) == vector["canonical"]
    assert "sign_type=RSA2" in vector["canonical"] and "sign=" not in vector["canonical"]
    assert signed["sign"] == vector["sign"]


def test_alipay_notification_verifies_and_every_tampering_fails() -> None:
    form: dict[str, str] = VECTORS["alipay_notify"]["form"]
    assert (
        canonical(form, frozenset({"sign", "sign_type"})) == VECTORS["alipay_notify"]["canonical"]
    )
    assert verify_notification(form, PUBLIC)
    assert not verify_notification({**form, "total_amount": "88.89"}, PUBLIC)
    assert not verify_notification({**form, "out_trade_no": "ord_2"}, PUBLIC)
    assert not verify_notification({k: v for k, v in form.items() if k != "sign"}, PUBLIC)
    assert not verify_notification({**form, "sign_type": "RSA"}, PUBLIC)
    assert not verify_notification({**form, "sign": "not base64!"}, PUBLIC)
    assert not verify_notification(form, OTHER.public_key())


# -- WeChat Pay v3 -------------------------------------------------------------------


def _headers(**overrides: str) -> dict[str, str]:
    vector = VECTORS["wechatpay_notify"]
    headers = {
        "Wechatpay-Timestamp": vector["timestamp"],
        "Wechatpay-Nonce": vector["nonce"],
        "Wechatpay-Signature": vector["signature"],
        "Wechatpay-Serial": vector["serial"],
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }
    return {**headers, **overrides}


NOW = int(VECTORS["wechatpay_notify"]["timestamp"])
BODY = VECTORS["wechatpay_notify"]["body"].encode()


def test_wechatpay_request_authorization_is_the_known_answer() -> None:
    vector = VECTORS["wechatpay_request"]
    header = authorization(
        mchid=vector["mchid"],
        serial_no=vector["serial_no"],
        key=PRIVATE,
        method=vector["method"],
        path=vector["path"],
        body=vector["body"],
        timestamp=vector["timestamp"],
        nonce=vector["nonce"],
    )
    assert header == vector["authorization"]
    assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1900000001",')


def test_wechatpay_notification_verifies() -> None:
    verify_signed(_headers(), BODY, {"SERIAL1": PUBLIC}, NOW + 299)


@pytest.mark.parametrize(
    ("headers", "body", "now"),
    [
        ({}, BODY[:-1] + b" ", NOW),  # one byte of the body changed
        ({"Wechatpay-Serial": "OTHER"}, BODY, NOW),  # a key we do not have
        ({"Wechatpay-Signature": "WECHATPAY/SIGNTEST/abc"}, BODY, NOW),  # the probe
        ({"Wechatpay-Timestamp": str(NOW - 301)}, BODY, NOW),  # stale
        ({}, BODY, NOW + 301),  # stale from where we stand
        ({}, BODY, NOW - 301),  # from the future
        ({"Wechatpay-Nonce": ""}, BODY, NOW),  # missing header
        ({"Wechatpay-Signature-Type": ""}, BODY, NOW),  # no signature type
        ({"Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, BODY, NOW),  # another type
        ({}, b"\xff" + BODY, NOW),  # not UTF-8
    ],
)
def test_wechatpay_tampering_is_refused(headers: dict[str, str], body: bytes, now: int) -> None:
    with pytest.raises(NotificationSignatureError):
        verify_signed(_headers(**headers), body, {"SERIAL1": PUBLIC}, now)


def test_wechatpay_notification_by_another_key_is_refused() -> None:
    with pytest.raises(NotificationSignatureError):
        verify_signed(_headers(), BODY, {"SERIAL1": OTHER.public_key()}, NOW)


def test_wechatpay_resource_decrypts_and_refuses_tampering() -> None:
    vector = VECTORS["wechatpay_resource"]
    key = vector["api_v3_key"].encode()
    args = (vector["nonce"], vector["associated_data"], vector["ciphertext"])
    assert decrypt_resource(key, *args).decode() == vector["plaintext"]
    with pytest.raises(NotificationFormatError):
        decrypt_resource(b"x" * 32, *args)
    with pytest.raises(NotificationFormatError):
        decrypt_resource(key, vector["nonce"], "refund", vector["ciphertext"])
    with pytest.raises(NotificationFormatError):
        decrypt_resource(key, vector["nonce"], vector["associated_data"], "!!")
