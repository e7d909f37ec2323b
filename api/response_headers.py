"""Headers on every answer the API gives, errors and the docs pages included.

    X-Content-Type-Options: nosniff   a browser takes our JSON as JSON, never as a page
                                      or a script it guessed from the bytes
    Cache-Control: no-store           on every /v1 answer: they carry accounts, orders,
                                      payments and keys, and no cache between the caller
                                      and us (a proxy, a shared browser) may keep a copy

A route that sets its own Cache-Control keeps it. The `server` banner is uvicorn's, and
is off where uvicorn starts (`--no-server-header`: stack.uvicorn_command, the Dockerfile,
docker-compose.yml). Pure ASGI, as api.request_ids: no task per request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
_PRIVATE_PREFIX = "/v1/"


class ResponseHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        private = f"{scope['path'].rstrip('/')}/".startswith(_PRIVATE_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _with_ours(message.get("headers", []), private)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _with_ours(headers: list[tuple[bytes, bytes]], private: bool) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _value in headers}
    ours = [_NOSNIFF] if _NOSNIFF[0] not in present else []
    if private and _NO_STORE[0] not in present:
        ours.append(_NO_STORE)
    return [*headers, *ours]
