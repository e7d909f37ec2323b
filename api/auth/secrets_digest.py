"""Digests of the high-entropy secrets we hand out (refresh tokens, API keys).

SHA-256 suffices for these, unlike for passwords: each is at least 256 random
bits, so there is nothing to guess and no need for a slow hash on every request.
"""

from __future__ import annotations

import hashlib
import hmac


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), stored_digest)
