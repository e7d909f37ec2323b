"""Errors the pure domain raises when a business rule refuses its input.

    DomainError            base; `code`, `message`, `param`; never retryable
    ├── InvalidOrder       the order itself is malformed (lines, quantities, currency, total)
    ├── CouponRejected     the coupon exists but cannot be used on this order now
    └── WebhookSignatureInvalid  a webhook's signature is missing, malformed, wrong or stale

Retrying cannot help: the same input is refused the same way every time, so workflows
list these in `non_retryable_error_types` and the API answers them with a 4xx.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base: a business rule refused the input. Never retryable."""

    retryable: ClassVar[bool] = False

    code: str
    message: str
    param: str | None

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        # All three go to `args` so the error pickles and reprs with everything it carries.
        super().__init__(code, message, param)
        self.code = code
        self.message = message
        self.param = param

    def __str__(self) -> str:
        where = f" [{self.param}]" if self.param else ""
        return f"{self.code}{where}: {self.message}"


class InvalidOrder(DomainError):
    """The order cannot be priced as submitted; `param` points at the field to fix."""


class CouponRejected(DomainError):
    """The coupon does not apply to this order (window, currency or threshold)."""


class WebhookSignatureInvalid(DomainError):
    """A webhook does not carry a valid, fresh signature of its body (`domain.webhook_signing`)."""
