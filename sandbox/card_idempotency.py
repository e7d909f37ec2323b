"""The gateway's idempotency keys: the first answer to a key is the answer to every repeat.

A POST with `Idempotency-Key` runs once; a repeat with the same endpoint and
parameters gets the stored answer back (status and body, plus the header
`Idempotent-Replayed: true`), and a repeat with anything different is refused
with `400 idempotency_key_in_use`. As at Stripe, a request refused while its
parameters were read is not stored (nothing ran). Unlike Stripe, a 5xx is
not stored either: injected faults must stay retryable under the same key.

Keys live in memory, at most `capacity` of them (oldest forgotten first), and
are lost on a restart; the core store still makes creating a payment or a
refund idempotent by our ids. Keyed requests run one at a time, so a repeat
that arrives while the first is running waits for its answer.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Response
from pydantic import BaseModel

from sandbox.card_errors import CardError, error_response
from sandbox.errors import SandboxError

_MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class _Answer:
    fingerprint: str
    status_code: int
    body: bytes


def fingerprint(method: str, path: str, fields: Mapping[str, str]) -> str:
    """What makes two requests "the same": endpoint and every parameter."""
    canonical = f"{method} {path}\n{urlencode(sorted(fields.items()))}"
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyKeys:
    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._answers: dict[str, _Answer] = {}
        self._lock = asyncio.Lock()

    async def run(
        self, key: str | None, request_fingerprint: str, action: Callable[[], Awaitable[BaseModel]]
    ) -> Response:
        """Answer with `action`'s model (200) or its error, once per key."""
        if key is None:
            return _response(*await _answer(action))
        if not key or len(key) > _MAX_KEY_LENGTH:
            raise CardError(
                400, "idempotency_key_invalid", "Idempotency-Key must be 1 to 255 characters."
            )
        async with self._lock:
            stored = self._answers.get(key)
            if stored is None:
                status_code, body = await _answer(action)
                if status_code < 500:
                    self._remember(key, _Answer(request_fingerprint, status_code, body))
                return _response(status_code, body)
            if stored.fingerprint != request_fingerprint:
                raise CardError(
                    400,
                    "idempotency_key_in_use",
                    "This Idempotency-Key was used with other parameters.",
                    type_="idempotency_error",
                )
            return _response(stored.status_code, stored.body, {"Idempotent-Replayed": "true"})

    def _remember(self, key: str, answer: _Answer) -> None:
        self._answers[key] = answer
        while len(self._answers) > self._capacity:
            del self._answers[next(iter(self._answers))]  # dicts keep insertion order


async def _answer(action: Callable[[], Awaitable[BaseModel]]) -> tuple[int, bytes]:
    try:
        model = await action()
    except (CardError, SandboxError) as error:
        rendered = error_response(error)
        return rendered.status_code, bytes(rendered.body)
    return 200, model.model_dump_json().encode()


def _response(status_code: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)
