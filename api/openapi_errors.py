"""The error answers the OpenAPI document declares: one example per status, one builder.

Every route lists the statuses it really answers with, as
`responses=error_responses(400, 401, 404)`; each is declared with the one error body
(`api.errors.ErrorOut`) and an example of it. FastAPI on its own declares a 422 on
every route with a parameter or body, which this API never answers (a validation
error is a 400, `api.errors`): `finish_openapi` takes those out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from api.errors import ErrorOut, error_body


@dataclass(frozen=True)
class _Example:
    description: str
    error_type: str
    code: str
    message: str
    param: str | None
    headers: dict[str, Any] | None = None


_EXAMPLES: dict[int, _Example] = {
    400: _Example(
        "Invalid request: a field, parameter or header is missing or wrong; nothing changed.",
        "invalid_request_error",
        "invalid_missing",
        "Field required",
        "amount",
    ),
    401: _Example(
        "No credential, or one that is not valid (expired, revoked, wrong).",
        "authentication_error",
        "credentials_missing",
        "send a valid access token or API key as Authorization: Bearer ...",
        "Authorization",
        {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    ),
    403: _Example(
        "The caller's role may not use this route.",
        "permission_error",
        "role_not_allowed",
        "this endpoint is for: operator",
        None,
    ),
    404: _Example(
        "No such object, or not one the caller may see.",
        "not_found_error",
        "order_not_found",
        "no order ord_123",
        "id",
    ),
    409: _Example(
        "The object's state refuses this, or the Idempotency-Key was used for another request.",
        "conflict_error",
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request",
        "Idempotency-Key",
    ),
    413: _Example(
        "The request body is over the size limit; nothing was read or changed.",
        "invalid_request_error",
        "request_too_large",
        "the request body is too large",
        None,
    ),
    429: _Example(
        "Too many attempts from this account or address (rate_limited), or too many of "
        "this caller's requests waiting at once (order_waits_per_caller); wait Retry-After "
        "seconds.",
        "rate_limit_error",
        "rate_limited",
        "too many attempts; retry in 30 s",
        None,
        {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    ),
    503: _Example(
        "A service behind the API (the database, Temporal) is not answering; retrying may "
        "help, after Retry-After seconds when given.",
        "api_error",
        "database_unavailable",
        "the database is not answering; try again shortly",
        None,
        {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    ),
}

ERROR_STATUSES = frozenset(_EXAMPLES)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that answers these error statuses (and no others).

    Each such route reads the database (its caller's credentials, at least), which may be
    away for a moment: 503 is declared on every one."""
    declared: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 503}):
        example = _EXAMPLES[status]  # KeyError: a status with no example yet: add one
        body = error_body(example.error_type, example.code, example.message, example.param)
        response: dict[str, Any] = {
            "model": ErrorOut,
            "description": example.description,
            "content": {"application/json": {"example": body}},
        }
        if example.headers:
            response["headers"] = example.headers
        declared[status] = response
    return declared


# A channel's or the bank's notification: read raw (its signature covers the bytes), in
# the sender's own format; the answer is the sender's acknowledgement (Alipay's is the
# text `success`, WeChat Pay's an empty 204) or our error in the sender's shape.
NOTIFICATION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The notification as the channel sends and signs it.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        },
    }
}
NOTIFICATION_ACKNOWLEDGEMENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Taken: the sender's acknowledgement.",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    },
    204: {"description": "Taken (WeChat Pay's acknowledgement)."},
}


def finish_openapi(app: FastAPI) -> None:
    """Take FastAPI's 422 (and the schemas only it used) out of the app's document, and
    give the error examples back the `"param": null` that FastAPI drops (it leaves
    every null out of the document, examples' too)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                responses.pop("422", None)
                for response in responses.values():
                    example = response.get("content", {}).get("application/json", {})
                    error = example.get("example", {}).get("error")
                    if isinstance(error, dict):
                        error.setdefault("param", None)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
