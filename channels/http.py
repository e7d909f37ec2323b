"""The one place adapters turn HTTP outcomes into `channels.errors`.

    transport error, timeout, 408, 429, 5xx  -> ChannelUnavailable (retry may help)
    404                                      -> the adapter's not-found error
    any other 4xx                            -> ChannelRejected(code=<the channel's code>)

Messages name the call (`what`) and the status, never the request's headers or
body, so no key or signature can reach a log line through an error.
"""

from __future__ import annotations

from typing import Any, TypeVar

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import BaseModel, ValidationError

from channels.errors import ChannelError, ChannelRejected, ChannelUnavailable, PaymentNotFound

RETRYABLE_STATUSES = frozenset({408, 429})
_Model = TypeVar("_Model", bound=BaseModel)


def channel_client(timeout: float | httpx.Timeout) -> httpx.AsyncClient:
    """The client for calls to channels (and the bank), and for the sandbox's notices to
    us: httpx's API over aiohttp's connections (httpx_aiohttp's transport).

    httpx's own transport (httpcore over anyio) took 1.3 ms of CPU a request, 20 at once
    on loopback, against 0.21 ms over aiohttp (a POST with a form and a JSON answer of
    Alipay's size); in the worker's profile at 50 orders in flight it was 18% of the time
    holding the GIL, for one channel call an order. Errors reach `send` as httpx's (the
    transport maps aiohttp's); a request's timeout bounds connecting and each read.
    Merchants' webhooks keep httpx's own transport: each is pinned to a checked address
    (activities.webhook_targets) through it."""
    return httpx.AsyncClient(timeout=timeout, transport=AiohttpTransport())


async def send(
    client: httpx.AsyncClient, what: str, method: str, url: str | httpx.URL, **kwargs: Any
) -> httpx.Response:
    """`client.request`, with transport failures as ChannelUnavailable."""
    try:
        return await client.request(method, url, **kwargs)
    except TRANSPORT_FAILURES as exc:
        raise unavailable(what, exc) from None


# What a call that never got an answer raises: httpx's errors, and aiohttp's or a timeout
# where the transport left one unmapped.
TRANSPORT_FAILURES = (httpx.TransportError, aiohttp.ClientError, TimeoutError)


def unavailable(what: str, failure: BaseException) -> ChannelUnavailable:
    """The ChannelUnavailable a transport failure is: "timeout" when no answer came in
    time, "unreachable" otherwise (refused, reset, closed). Judged by aiohttp's own error
    where the transport mapped one, as it names a refused connection a connect timeout.
    The message names the failure's type only: its text could echo the request."""
    cause = failure.__cause__
    original = cause if isinstance(cause, aiohttp.ClientError | TimeoutError) else failure
    if isinstance(original, TimeoutError | httpx.TimeoutException):
        return ChannelUnavailable(f"{what}: timed out", code="timeout")
    return ChannelUnavailable(f"{what}: {type(original).__name__}", code="unreachable")


def raise_for_status(
    what: str,
    status: int,
    code: str,
    not_found: type[ChannelError] = PaymentNotFound,
) -> None:
    """Raise the ChannelError an error status means; `code` is the channel's own."""
    if status < 400:
        return
    message = f"{what}: HTTP {status} {code}"
    if status >= 500 or status in RETRYABLE_STATUSES:
        raise ChannelUnavailable(message, code=code)
    if status == 404:
        raise not_found(message, code=code)
    raise ChannelRejected(message, code=code)


def read_model(what: str, model: type[_Model], response: httpx.Response) -> _Model:
    """The answer as `model`; an answer we cannot read is ChannelUnavailable (retry may help)."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError:
        raise ChannelUnavailable(f"{what}: unreadable response", code="invalid_response") from None
