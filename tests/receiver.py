"""A real HTTP server that receives what we or the sandbox send: notifications, webhooks.

A tiny Starlette app on a uvicorn thread. Each test takes its own inbox (a path
on the server), so tests never see each other's requests; an inbox answers 500
to its first `fail_first` requests and 200 after, to drive a sender's retries.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

STARTUP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ReceivedRequest:
    headers: dict[str, str]  # as the server saw them: lower-case names
    body: bytes
    answered: int
    received_at: float  # time.monotonic()


@dataclass
class Inbox:
    """One URL. Answers 500 to its first `fail_first` requests, 200 after."""

    url: str
    fail_first: int = 0
    _requests: list[ReceivedRequest] = field(default_factory=list)

    async def received(self) -> list[ReceivedRequest]:
        with _RECEIVER_LOCK:
            return list(self._requests)


_RECEIVER_LOCK = threading.Lock()  # the receiver's thread writes, tests read


class Receiver:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._inboxes: dict[str, Inbox] = {}

    def inbox(self, fail_first: int = 0) -> Inbox:
        name = secrets.token_hex(8)
        inbox = Inbox(url=f"{self.base_url}/inbox/{name}", fail_first=fail_first)
        with _RECEIVER_LOCK:
            self._inboxes[name] = inbox
        return inbox

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with _RECEIVER_LOCK:
            inbox = self._inboxes.get(request.path_params["name"])
            if inbox is None:
                return Response(status_code=404)
            status = 500 if len(inbox._requests) < inbox.fail_first else 200
            inbox._requests.append(
                ReceivedRequest(dict(request.headers), body, status, time.monotonic())
            )
        # `success` is what Alipay wants to read; the other senders only look at the status.
        return Response("success", status_code=status, media_type="text/plain")


@contextmanager
def serve_receiver(port: int) -> Iterator[Receiver]:
    """Run a receiver on 127.0.0.1:`port` until the block ends."""
    receiver = Receiver(f"http://127.0.0.1:{port}")
    routes = [
        Route("/inbox/{name}", receiver.handle, methods=["POST"]),
        # Senders that append their own path to a base URL (OTLP: /v1/traces).
        Route("/inbox/{name}/{tail:path}", receiver.handle, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="http-receiver", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the HTTP receiver did not start")
        time.sleep(0.01)  # poll interval
    try:
        yield receiver
    finally:
        server.should_exit = True
        thread.join(timeout=10)
