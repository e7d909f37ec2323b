"""Merchant webhook signatures: known answers, and every way `verify` refuses."""

from __future__ import annotations

import pytest

from domain.errors import WebhookSignatureInvalid
from domain.keys import webhook_event_id
from domain.webhook_signing import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    sign,
    signed_headers,
    verify,
)

SECRET = "whsec_test_secret"
BODY = b'{"id":"evt_test","type":"order.paid"}'
T = 1_700_000_000
# From `printf '%s' '1700000000.<body>' | openssl dgst -sha256 -hmac whsec_test_secret`.
KNOWN_DIGEST = "c8b7c29e747e752b1424508699f406af549dd599b573150e6a07d7881c1bbd2e"
EMPTY_BODY_DIGEST = "316b9ab98c15bfa039d243f3196acee619cf29749a91a634e6a8154e2f7b6727"


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    assert sign(SECRET, BODY, T) == f"t={T},v1={KNOWN_DIGEST}"
    assert sign(SECRET, b"", T) == f"t={T},v1={EMPTY_BODY_DIGEST}"


def test_a_delivery_carries_signature_event_id_and_type() -> None:
    headers = signed_headers(SECRET, "evt_test", "order.paid", BODY, T)
    assert headers == {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: f"t={T},v1={KNOWN_DIGEST}",
        EVENT_ID_HEADER: "evt_test",
        EVENT_TYPE_HEADER: "order.paid",
    }


def test_a_merchant_verifies_a_genuine_delivery_within_the_tolerance() -> None:
    header = sign(SECRET, BODY, T)
    assert verify(SECRET, header, BODY, now=T) == T
    assert verify(SECRET, header, BODY, now=T + 300) == T
    assert verify(SECRET, header, BODY, now=T - 300) == T  # clocks differ both ways


def test_verify_accepts_any_matching_v1_and_ignores_unknown_schemes() -> None:
    header = f"t={T},v0=abc,v1={'0' * 64},v1={KNOWN_DIGEST}"
    assert verify(SECRET, header, BODY, now=T) == T


GENUINE = f"t={T},v1={KNOWN_DIGEST}"


@pytest.mark.parametrize(
    ("secret", "header", "body", "now", "code"),
    [
        pytest.param(SECRET, GENUINE, BODY + b" ", T, "signature_mismatch", id="body-appended"),
        pytest.param(
            SECRET,
            GENUINE,
            BODY.replace(b"paid", b"closed"),
            T,
            "signature_mismatch",
            id="body-edited",
        ),
        pytest.param("whsec_old", GENUINE, BODY, T, "signature_mismatch", id="other-secret"),
        pytest.param(
            SECRET, f"t={T + 1},v1={KNOWN_DIGEST}", BODY, T, "signature_mismatch", id="other-time"
        ),
        pytest.param(SECRET, GENUINE, BODY, T + 301, "signature_stale", id="replayed-late"),
        pytest.param(SECRET, GENUINE, BODY, T - 301, "signature_stale", id="from-the-future"),
        pytest.param(SECRET, None, BODY, T, "signature_missing", id="no-header"),
        pytest.param(SECRET, "", BODY, T, "signature_missing", id="empty-header"),
        pytest.param(SECRET, f"v1={KNOWN_DIGEST}", BODY, T, "signature_malformed", id="no-t"),
        pytest.param(SECRET, f"t={T}", BODY, T, "signature_malformed", id="no-v1"),
        pytest.param(
            SECRET,
            f"t={T},v1={KNOWN_DIGEST.upper()}",
            BODY,
            T,
            "signature_malformed",
            id="upper-hex",
        ),
        pytest.param(SECRET, f"t={T},{GENUINE}", BODY, T, "signature_malformed", id="two-t"),
        pytest.param(
            SECRET, f"t=-1,v1={KNOWN_DIGEST}", BODY, T, "signature_malformed", id="negative-t"
        ),
        pytest.param(SECRET, "garbage", BODY, T, "signature_malformed", id="garbage"),
    ],
)
def test_verify_refuses(secret: str, header: str | None, body: bytes, now: int, code: str) -> None:
    with pytest.raises(WebhookSignatureInvalid) as refused:
        verify(secret, header, body, now=now)
    assert refused.value.code == code


def test_event_ids_derive_from_the_order_the_type_and_the_refund() -> None:
    paid = webhook_event_id("ord_1", "order.paid")
    assert paid == webhook_event_id("ord_1", "order.paid")  # the same on every retry
    assert paid.startswith("evt_") and len(paid) == 36
    others = {
        webhook_event_id("ord_2", "order.paid"),
        webhook_event_id("ord_1", "order.closed"),
        webhook_event_id("ord_1", "order.refunded", "ref_1"),
        webhook_event_id("ord_1", "order.refunded", "ref_2"),
    }
    assert len(others) == 4 and paid not in others
