"""The sandbox's one error type and the JSON shape every error answers with.

    SandboxError(status, code)    raised anywhere in the sandbox; rendered as
                                  `{"error": {"code": ..., "message": ...}}`

Validation errors and unknown routes are rendered in the same shape so that a
client only ever has to read one error format.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from sandbox.protocol import ErrorBody, ErrorDetail


class SandboxError(Exception):
    def __init__(self, status_code: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status_code = status_code
        self.code = code
        self.message = message or code.replace("_", " ")


def error_response(status_code: int, code: str, message: str) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return JSONResponse(body.model_dump(), status_code=status_code)


def install_error_handlers(app: FastAPI) -> None:
    async def on_sandbox_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SandboxError)
        return error_response(exc.status_code, exc.code, exc.message)

    async def on_invalid_request(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        return error_response(400, "invalid_request", f"invalid fields: {fields}")

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        return error_response(exc.status_code, code, str(exc.detail))

    app.add_exception_handler(SandboxError, on_sandbox_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)
    app.add_exception_handler(HTTPException, on_http_error)
