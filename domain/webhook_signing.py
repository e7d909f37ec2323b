"""HMAC-SHA256 signatures in the style of Stripe's webhooks: on the webhooks we send to
merchants, and (through `channels.signature`) on the sandbox's bank and card messages.

Every delivery carries three headers:

    Paysaga-Signature:  t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
    Paysaga-Event-Id:   evt_...      the same on every retry: merchants dedupe by it
    Paysaga-Event-Type: order.paid | order.closed | order.refunded

The timestamp is signed with the body and renewed on every attempt, so a
captured delivery cannot be replayed outside the tolerance. `verify` is what a
merchant runs on its side (and what our tests run); it accepts several `v1=`
entries so that a signer may one day sign with two secrets during a rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from domain.errors import WebhookSignatureInvalid

SIGNATURE_HEADER = "Paysaga-Signature"
EVENT_ID_HEADER = "Paysaga-Event-Id"
EVENT_TYPE_HEADER = "Paysaga-Event-Type"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The `Paysaga-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},{SCHEME}={_digest(secret, body, timestamp)}"


def signed_headers(
    secret: str, event_id: str, event_type: str, body: bytes, timestamp: int
) -> dict[str, str]:
    """Every header of one delivery attempt, the JSON content type included."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, timestamp),
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
    }


def verify(
    secret: str | bytes,
    header: str | None,
    body: bytes,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Check `header` against the exact raw `body`; return the signed timestamp.

    Raises `WebhookSignatureInvalid` (code `signature_missing`, `signature_malformed`,
    `signature_mismatch` or `signature_stale`) unless a `v1` digest matches and the
    timestamp is within `tolerance` seconds of `now`, in either direction.
    """
    if not header:
        raise WebhookSignatureInvalid("signature_missing", "no signature header")
    timestamp, digests = _parse(header)
    expected = _digest(secret, body, timestamp)
    # Compare with every digest, without an early exit, so timing tells nothing.
    matches = [hmac.compare_digest(expected, digest) for digest in digests]
    if not any(matches):
        raise WebhookSignatureInvalid("signature_mismatch", "no signature matches the body")
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureInvalid("signature_stale", "the signature's timestamp is too far")
    return timestamp


def _digest(secret: str | bytes, body: bytes, timestamp: int) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _parse(header: str) -> tuple[int, list[str]]:
    """Split `t=...,v1=...[,v1=...]`; other schemes are skipped, for forward compatibility."""
    timestamps: list[str] = []
    digests: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise _malformed()
        if key == "t":
            timestamps.append(value)
        elif key == SCHEME:
            if not _HEX_DIGEST.fullmatch(value):
                raise _malformed()
            digests.append(value)
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]) or not digests:
        raise _malformed()
    return int(timestamps[0]), digests


def _malformed() -> WebhookSignatureInvalid:
    return WebhookSignatureInvalid("signature_malformed", "the signature header is malformed")
