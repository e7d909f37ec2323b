"""Every error the API answers with, and the one place that shapes them as JSON.

ApiError                    {"error": {"type", "code", "message", "param"}}
├── InvalidRequest          400 invalid_request_error (also DomainError, body validation)
├── SignatureInvalid        401 authentication_error (notifications)
├── Unauthenticated         401 authentication_error (api.auth.caller; no or bad credentials)
├── Forbidden               403 permission_error (the caller's role may not use the route)
├── NotFound                404 not_found_error
├── Conflict                409 conflict_error (idempotency key reuse, order state)
├── TooManyRequests         429 rate_limit_error with Retry-After (api.auth.rate_limit)
└── ServiceUnavailable      503 api_error with Retry-After: the database or Temporal is
                            unreachable, no worker took the saga's step in time, a channel
                            is down; retrying may help

Two come before any route, from api.body_guard, in the same shape: 413 request_too_large
(a body over the limit) and 400 duplicate_key (a JSON object giving a key twice).
The statuses each route declares in the OpenAPI document: api.openapi_errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from domain.errors import DomainError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param

    def headers(self) -> dict[str, str]:
        return {}


class InvalidRequest(ApiError):
    pass


class SignatureInvalid(ApiError):
    status_code = 401
    error_type = "authentication_error"


class NotFound(ApiError):
    status_code = 404
    error_type = "not_found_error"


class Conflict(ApiError):
    status_code = 409
    error_type = "conflict_error"


class ServiceUnavailable(ApiError):
    status_code = 503
    error_type = "api_error"

    def __init__(
        self, code: str, message: str, param: str | None = None, *, retry_after: int = 5
    ) -> None:
        super().__init__(code, message, param)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ErrorDetail(BaseModel):
    type: str
    code: str
    message: str
    param: str | None


class ErrorOut(BaseModel):
    """Every error answer's body, for the OpenAPI document."""

    error: ErrorDetail


def error_body(error_type: str, code: str, message: str, param: str | None) -> dict[str, object]:
    return {"error": {"type": error_type, "code": code, "message": message, "param": param}}


def _response(error: ApiError) -> JSONResponse:
    body = error_body(error.error_type, error.code, error.message, error.param)
    return JSONResponse(body, status_code=error.status_code, headers=error.headers())


def _param(location: tuple[object, ...]) -> str | None:
    """("body", "lines", 2, "quantity") -> "lines[2].quantity"."""
    path = ""
    for part in (
        location[1:]
        if location and location[0] in ("body", "query", "path", "header")
        else location
    ):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or None


def _invalid(first: Mapping[str, Any]) -> InvalidRequest:
    """The first validation error as our 400. A header that is absent or empty is
    `<name>_missing` (Idempotency-Key: `idempotency_key_missing`), named as it is sent."""
    location = tuple(first.get("loc", ()))
    message = f"{first.get('msg', 'invalid value')}"
    if len(location) == 2 and location[0] == "header" and not first.get("input"):
        header = str(location[1])
        return InvalidRequest(f"{header.lower().replace('-', '_')}_missing", message, header)
    return InvalidRequest("invalid_" + first.get("type", "value"), message, _param(location))


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's own 405 names only the
    first route that matched the path: GET /v1/orders/{id} hid DELETE /v1/orders/{id}."""
    root, path = str(request.scope.get("root_path", "")), request.url.path
    path = path.removeprefix(root) if root else path
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):  # included routers' too
        if route.path and route.methods and compile_path(route.path)[0].match(path):
            methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, error: ApiError) -> JSONResponse:
        return _response(error)

    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, error: DomainError) -> JSONResponse:
        return _response(InvalidRequest(error.code, error.message, error.param))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _response(_invalid(error.errors()[0]))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        cls = NotFound if error.status_code == 404 else InvalidRequest
        api_error = cls(
            "not_found" if error.status_code == 404 else "bad_request", str(error.detail)
        )
        api_error.status_code = error.status_code
        response = _response(api_error)
        response.headers.update(error.headers or {})
        if error.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(OperationalError)
    async def _database_error(_request: Request, error: OperationalError) -> JSONResponse:
        # Down, restarting or (SQLite) locked past the busy timeout: a retry may be taken.
        logger.warning("database unavailable: %s", type(error.orig).__name__)
        message = "the database is not answering; try again shortly"
        return _response(ServiceUnavailable("database_unavailable", message, retry_after=2))

    @app.exception_handler(RPCError)
    async def _temporal_error(_request: Request, error: RPCError) -> JSONResponse:
        logger.warning("temporal call failed: %s", error.status)
        return _response(ServiceUnavailable("temporal_unavailable", "try again shortly"))

    @app.exception_handler(WorkflowQueryFailedError)
    async def _query_failed(_request: Request, error: WorkflowQueryFailedError) -> JSONResponse:
        # No worker could answer from the workflow's history (all busy, or one that cannot
        # replay it: a bug, which its workers log too). Nothing was changed: a retry may do.
        logger.error("workflow query failed: %s", error.message)
        return _response(ServiceUnavailable("temporal_unavailable", "try again shortly"))
