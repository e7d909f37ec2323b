"""The card gateway's HTTP API: bearer auth, form-encoded POSTs with idempotency keys.

`CardApi` is the adapter's only I/O and the only place that turns HTTP
outcomes into `channels.errors`:

    transport error, timeout, 408, 429, 5xx  -> ChannelUnavailable (retry may help)
    404                                      -> PaymentNotFound
    any other 4xx                            -> ChannelRejected(code=<the gateway's code>)
    a 2xx we cannot read                     -> ChannelUnavailable(code="invalid_response")

The secret key never appears in a message, a repr or a log line; a message
names the method, the path (without its query) and the gateway's error code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from channels.card.wire import ErrorBody
from channels.http import raise_for_status, read_model, send

_Model = TypeVar("_Model", bound=BaseModel)


class CardApi:
    """One gateway account's API under `base_url` (e.g. `https://api.example.com`)."""

    def __init__(self, base_url: str, secret_key: str, client: httpx.AsyncClient) -> None:
        self._base_url = base_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {secret_key}"}
        self._client = client

    def __repr__(self) -> str:  # keep the key out of any accidental repr
        return f"CardApi(base_url={self._base_url!r})"

    async def get(
        self, path: str, model: type[_Model], params: Mapping[str, str] | None = None
    ) -> _Model:
        return await self._call("GET", path, model, params=params)

    async def post(
        self, path: str, model: type[_Model], form: Mapping[str, str], idempotency_key: str
    ) -> _Model:
        """POST form-encoded fields; the gateway replays its first answer for a repeated key."""
        headers = {"Idempotency-Key": idempotency_key}
        return await self._call("POST", path, model, form=form, headers=headers)

    async def _call(
        self,
        method: str,
        path: str,
        model: type[_Model],
        *,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> _Model:
        what = f"card {method} {path}"
        response = await send(
            self._client,
            what,
            method,
            self._base_url + path,
            params=params,
            data=form,
            headers={**self._auth, **(headers or {})},
        )
        if response.status_code >= 400:
            raise_for_status(what, response.status_code, _error_code(response))
        return read_model(what, model, response)


def _error_code(response: httpx.Response) -> str:
    """The gateway's `code`, else its error `type`, else the HTTP status."""
    try:
        error = ErrorBody.model_validate_json(response.content).error
    except ValidationError:
        return f"http_{response.status_code}"
    return error.code or error.type
