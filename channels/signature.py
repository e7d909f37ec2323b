"""HMAC-SHA256 notification signatures, in the style of Stripe's webhooks.

The sandbox signs every notification it sends and adapters verify it before
trusting a byte of the body. The header value is

    Paysaga-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

Signing the timestamp together with the body stops an attacker from replaying
an old, genuinely signed message: a timestamp outside the tolerance is refused
even when the digest matches. Several `v1=` entries may appear so that a
sender can sign with both the old and the new secret while a secret rotates.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from channels.errors import NotificationSignatureError

SIGNATURE_HEADER = "Paysaga-Signature"
SCHEME = "v1"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """Return the signature header value for `body` sent at `timestamp`.

    Senders call this on every attempt with a fresh timestamp; tests use it to
    craft valid, stale and tampered signatures.
    """
    return f"t={timestamp},{SCHEME}={_digest(secret, body, timestamp)}"


def verify(
    secret: bytes,
    body: bytes,
    header: str | None,
    *,
    now: int,
    tolerance_seconds: int,
) -> int:
    """Check `header` against the exact raw `body`; return the signed timestamp.

    Raises `NotificationSignatureError` when the header is missing or
    malformed, when no `v1` digest matches, or when the timestamp is further
    than `tolerance_seconds` from `now` in either direction (a timestamp from
    the future is as suspect as an old one).
    """
    if not header:
        raise NotificationSignatureError("signature header missing", code="signature_missing")
    timestamp, digests = _parse(header)
    expected = _digest(secret, body, timestamp).encode("ascii")
    # Compare against every digest (no early exit) so timing reveals nothing.
    matches = [hmac.compare_digest(expected, digest.encode("ascii")) for digest in digests]
    if not any(matches):
        raise NotificationSignatureError("signature does not match", code="signature_mismatch")
    if abs(now - timestamp) > tolerance_seconds:
        raise NotificationSignatureError(
            "signature timestamp outside tolerance", code="signature_stale"
        )
    return timestamp


def _digest(secret: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(secret, f"{timestamp}.".encode("ascii") + body, hashlib.sha256).hexdigest()


def _parse(header: str) -> tuple[int, list[str]]:
    """Split `t=...,v1=...[,v1=...]`; unknown schemes are ignored for forward compatibility."""
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


def _malformed() -> NotificationSignatureError:
    return NotificationSignatureError("signature header malformed", code="signature_malformed")
