"""The card gateway's errors, in its own JSON shape.

    CardError(status, type, code, message, param)
        rendered as `{"error": {"type", "code", "message", "param"}}`

The rest of the sandbox answers `{"error": {"code", "message"}}`; the card
API's routes use `CardRoute`, which renders a `CardError`, a core
`SandboxError` (translated here into the gateway's terms) and a request
validation error in the gateway's shape instead. Injected faults (503 in the
core) become `500 api_error`, as a gateway's own failure would.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from channels.card.wire import ErrorBody, ErrorDetail
from sandbox.errors import SandboxError

INVALID_REQUEST = "invalid_request_error"


class CardError(Exception):
    def __init__(
        self,
        status_code: int,
        code: str | None,
        message: str,
        *,
        type_: str = INVALID_REQUEST,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = ErrorBody(
            error=ErrorDetail(type=type_, code=code, message=message, param=param)
        )

    def response(self) -> JSONResponse:
        return JSONResponse(self.body.model_dump(exclude_none=True), status_code=self.status_code)


# The core's codes, in the gateway's terms: (status, code, param, message).
_TRANSLATED: dict[str, tuple[int, str, str | None, str]] = {
    "payment_not_found": (404, "resource_missing", None, "No such payment_intent."),
    "refund_not_found": (404, "resource_missing", None, "No such refund."),
    "out_trade_no_conflict": (
        409,
        "order_id_conflict",
        "metadata[order_id]",
        "A payment_intent for this order_id exists with other amount, currency or merchant.",
    ),
    "refund_id_conflict": (
        409,
        "refund_id_conflict",
        "metadata[refund_id]",
        "A refund with this refund_id exists with other parameters.",
    ),
    "payment_not_paid": (
        400,
        "payment_intent_unexpected_state",
        "payment_intent",
        "Only a succeeded payment_intent can be refunded.",
    ),
    "refund_exceeds_payment": (
        400,
        "amount_too_large",
        "amount",
        "The refund would exceed what is left of the payment.",
    ),
}


def translate(error: SandboxError) -> CardError:
    if error.status_code >= 500:
        return CardError(500, "api_error", error.message, type_="api_error")
    translated = _TRANSLATED.get(error.code)
    if translated is None:
        return CardError(error.status_code, error.code, error.message)
    status, code, param, message = translated
    return CardError(status, code, message, param=param)


def error_response(error: CardError | SandboxError | RequestValidationError) -> JSONResponse:
    """The gateway's answer for an error raised while serving a request."""
    if isinstance(error, SandboxError):
        error = translate(error)
    elif isinstance(error, RequestValidationError):
        error = CardError(400, "parameter_invalid", "Invalid request parameters.")
    return error.response()


class CardRoute(APIRoute):
    """A route whose errors (its dependencies' too) answer in the gateway's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_in_card_terms(request: Request) -> Response:
            try:
                return await handle(request)
            except (CardError, SandboxError, RequestValidationError) as error:
                return error_response(error)

        return handle_in_card_terms
