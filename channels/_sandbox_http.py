"""What every adapter over the sandbox's protocol shares: one authenticated JSON
call with its error mapping, and reading a signed notification.

`SandboxHttp.call` is the only place that does I/O and the only place that
turns HTTP outcomes into `channels.errors`:

    transport error, timeout, 408, 429, 5xx  -> ChannelUnavailable (retry may help)
    404                                      -> the adapter's not-found error
    any other 4xx                            -> ChannelRejected(code=<the channel's code>)

The API key and webhook secret never appear in a message or a log line.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from channels.bank_wire import ErrorBody
from channels.base import Acknowledgement
from channels.errors import (
    ChannelError,
    NotificationFormatError,
)
from channels.http import raise_for_status, read_model, send
from channels.signature import SIGNATURE_HEADER, verify

_Model = TypeVar("_Model", bound=BaseModel)


ACKNOWLEDGEMENT = Acknowledgement(
    status_code=200, body='{"received":true}', media_type="application/json"
)


def unix_now() -> int:
    return int(time.time())


class SandboxHttp:
    """One bearer-authenticated JSON API under `base_url`, named `name` in errors.

    A 404 raises `not_found`, so each adapter can say what was not found.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str,
        client: httpx.AsyncClient,
        not_found: type[ChannelError],
    ) -> None:
        self._name = name
        self._base_url = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._client = client
        self._not_found = not_found

    def __repr__(self) -> str:  # keep the key out of any accidental repr
        return f"SandboxHttp(name={self._name!r}, base_url={self._base_url!r})"

    async def call(
        self,
        method: str,
        path: str,
        response_model: type[_Model],
        body: BaseModel | None = None,
    ) -> _Model:
        """Send one request and parse the answer, mapping every failure to a ChannelError."""
        what = f"{self._name} {method} {path}"
        kwargs: dict[str, Any] = {"headers": self._auth}
        if body is not None:
            kwargs["json"] = body.model_dump(mode="json")
        response = await send(self._client, what, method, self._base_url + path, **kwargs)
        if response.status_code >= 400:
            code = _error_code(response)
            raise_for_status(what, response.status_code, code, self._not_found)
        return read_model(what, response_model, response)


def read_notification(
    model: type[_Model],
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: bytes,
    now: int,
    tolerance_seconds: int,
    name: str,
) -> _Model:
    """Verify the signature over the exact raw body, and only then parse it.

    Raises `NotificationSignatureError` or `NotificationFormatError`.
    """
    verify(
        secret,
        body,
        _header(headers, SIGNATURE_HEADER),
        now=now,
        tolerance_seconds=tolerance_seconds,
    )
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise NotificationFormatError(
            f"unreadable {name} notification: {exc.error_count()} error(s)",
            code="notification_malformed",
        ) from None


def segment(value: str) -> str:
    """One path segment: an id may hold `/` or `?`, which must not change the route."""
    return quote(value, safe="")


def _error_code(response: httpx.Response) -> str:
    try:
        return ErrorBody.model_validate_json(response.content).error.code
    except ValidationError:
        return f"http_{response.status_code}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that also works for a plain dict."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
