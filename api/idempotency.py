"""The Idempotency-Key header, required on every POST that moves money.

A repeat with the same key and the same body gets the same answer (and moves
nothing again); the same key with another body is a 409 `idempotency_key_reused`.
A request without one is a 400 `idempotency_key_missing` (api.errors), so that a
client's retry can never make a second order or refund.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="The caller's own key for this request: a retry sends the same key "
        "and body and gets the same answer; the same key with another body is a 409.",
    ),
]
