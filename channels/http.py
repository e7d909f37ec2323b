"""The one place adapters turn HTTP outcomes into `channels.errors`.

    transport error, timeout, 408, 429, 5xx  -> ChannelUnavailable (retry may help)
    404                                      -> the adapter's not-found error
    any other 4xx                            -> ChannelRejected(code=<the channel's code>)

Messages name the call (`what`) and the status, never the request's headers or
body, so no key or signature can reach a log line through an error.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from channels.errors import ChannelError, ChannelRejected, ChannelUnavailable, PaymentNotFound

RETRYABLE_STATUSES = frozenset({408, 429})
_Model = TypeVar("_Model", bound=BaseModel)


async def send(
    client: httpx.AsyncClient, what: str, method: str, url: str | httpx.URL, **kwargs: Any
) -> httpx.Response:
    """`client.request`, with transport failures as ChannelUnavailable."""
    try:
        return await client.request(method, url, **kwargs)
    except httpx.TimeoutException:
        raise ChannelUnavailable(f"{what}: timed out", code="timeout") from None
    except httpx.TransportError as exc:
        # The exception type says enough; its text could echo request details.
        raise ChannelUnavailable(f"{what}: {type(exc).__name__}", code="unreachable") from None


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
