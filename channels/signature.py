"""HMAC-SHA256 notification signatures, in the style of Stripe's webhooks (one scheme with
the webhooks we send merchants: `domain.webhook_signing`; here its errors are a channel's).

The sandbox signs every notification it sends and adapters verify it before
trusting a byte of the body. The header value is

    Paysaga-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

Signing the timestamp together with the body stops an attacker from replaying
an old, genuinely signed message: a timestamp outside the tolerance is refused
even when the digest matches. Several `v1=` entries may appear so that a
sender can sign with both the old and the new secret while a secret rotates.
"""

from __future__ import annotations

from channels.errors import NotificationSignatureError
from domain import webhook_signing
from domain.errors import WebhookSignatureInvalid

SIGNATURE_HEADER = webhook_signing.SIGNATURE_HEADER


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """Return the signature header value for `body` sent at `timestamp`.

    Senders call this on every attempt with a fresh timestamp; tests use it to
    craft valid, stale and tampered signatures.
    """
    return webhook_signing.sign(secret, body, timestamp)


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
    try:
        return webhook_signing.verify(secret, header, body, now, tolerance_seconds)
    except WebhookSignatureInvalid as error:
        raise NotificationSignatureError(error.message, code=error.code) from None
