"""Every request body, before any route sees it: no longer than the limit, and JSON with
no key given twice. (Pure ASGI, innermost of our middleware: request ids, metrics and
traces see its answers.)

- 413 `request_too_large`: a Content-Length above the limit is refused before a byte of
  the body is read; a body without one (chunked) is read until it passes the limit and
  refused then. The rest is never read: the server closes the connection after the answer.
- 400 `duplicate_key` (param: the key): `{"amount": 1, "amount": 100000}` is the last
  value to Python's json and may be the first to a proxy, a log reader or a client's own
  check; we take neither.

A body within the limit is read here whole and handed on unchanged.
"""

from __future__ import annotations

import json
from email.message import Message as MimeHeader
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class BodyGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            if _declared_length(headers) > self.max_body_bytes:
                raise _TooLarge
            body = await _read_body(receive, self.max_body_bytes)
        except _TooLarge:
            await self._too_large(scope, receive, send)
            return
        except _Disconnected:
            return  # the caller is gone: no one to answer
        key = duplicate_key(body) if _is_json(headers) else None
        if key is not None:
            key = key[:100]  # echoed back: a key may be as long as the body
            message = f"the key {key!r} appears more than once in one JSON object"
            answer = error_body("invalid_request_error", "duplicate_key", message, key)
            await JSONResponse(answer, status_code=400)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the request body is longer than {self.max_body_bytes} bytes"
        answer = error_body("invalid_request_error", "request_too_large", message, None)
        await JSONResponse(answer, status_code=413)(scope, receive, send)


def _declared_length(headers: Headers) -> int:
    """The Content-Length, or 0 when there is none (the server refuses a malformed one)."""
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else 0


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks, length = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        length += len(chunk)
        if length > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then whatever the server says next (a disconnect)."""
    delivered = False

    async def replayed() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


def _is_json(headers: Headers) -> bool:
    """FastAPI's own rule for parsing a body as JSON: no content type, or application/json
    or application/*+json."""
    value = headers.get("content-type")
    if not value:
        return True
    header = MimeHeader()
    header["content-type"] = value
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def duplicate_key(body: bytes) -> str | None:
    """The first key an object of this JSON document gives twice; None when there is none
    or the body is not JSON at all (the route's own parser answers that)."""
    if not body:
        return None
    try:
        json.loads(body, object_pairs_hook=_unique_keys)
    except _DuplicateKey as duplicate:
        return duplicate.key
    except (ValueError, RecursionError):
        return None
    return None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen
