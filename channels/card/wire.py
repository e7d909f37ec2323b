"""The card gateway's wire format: the JSON its API answers and its webhooks carry.

Both sides read these models: the adapter parses answers and webhooks with
them and the sandbox (`sandbox.card_*`) renders with them, so the two
cannot drift apart. The shapes follow Stripe's PaymentIntents API; a field a
real gateway adds is ignored, and every status it documents parses, so the
adapter can decide about statuses our sandbox never shows (`processing`).

One addition Stripe does not have: `hosted_url`, the page where the buyer
types their card (Stripe would use a Checkout Session's `url`).

This module imports only pydantic, so the sandbox does not pull in httpx.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# The webhook signature header: `t=<unix>,v1=<hex HMAC-SHA256>` (`channels.signature`).
SIGNATURE_HEADER = "Card-Signature"

PaymentIntentStatus = Literal[
    "requires_payment_method",  # new, or the last attempt failed (`last_payment_error`)
    "requires_confirmation",
    "requires_action",  # the buyer must pass 3-D Secure
    "processing",
    "requires_capture",  # manual capture only; we never ask for it
    "succeeded",
    "canceled",
]
RefundStatus = Literal["pending", "requires_action", "succeeded", "failed", "canceled"]
# The events the adapter acts on; it acknowledges and drops any other type.
EventType = Literal[
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "refund.updated",  # a refund reached succeeded or failed; its `status` says which
]

_Item = TypeVar("_Item", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


class PaymentError(_Wire):
    """Why the last attempt failed (`card_declined`, `payment_intent_authentication_failure`)."""

    type: str
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


class RedirectToUrl(_Wire):
    url: str
    return_url: str | None = None


class NextAction(_Wire):
    type: str  # the sandbox only shows "redirect_to_url" (its 3-D Secure challenge)
    redirect_to_url: RedirectToUrl | None = None


class PaymentIntent(_Wire):
    id: str  # pi_...
    object: Literal["payment_intent"] = "payment_intent"
    amount: int  # minor units
    currency: str  # lower-case ISO 4217
    status: PaymentIntentStatus
    metadata: dict[str, str] = Field(default_factory=dict)  # ours: order_id, merchant_id
    latest_charge: str | None = None  # the charge (ch_...), once an attempt succeeded
    last_payment_error: PaymentError | None = None
    hosted_url: str
    next_action: NextAction | None = None


class Refund(_Wire):
    id: str  # re_...
    object: Literal["refund"] = "refund"
    amount: int
    currency: str
    payment_intent: str
    charge: str | None = None
    status: RefundStatus
    failure_reason: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)  # ours: refund_id, order_id


class SearchResult(_Wire, Generic[_Item]):
    """`GET /v1/.../search?query=metadata['key']:'value'`; no match is an empty `data`."""

    object: Literal["search_result"] = "search_result"
    data: list[_Item]
    has_more: bool = False


class ErrorDetail(_Wire):
    type: str  # invalid_request_error, card_error, idempotency_error, api_error, ...
    code: str | None = None
    message: str | None = None
    param: str | None = None
    decline_code: str | None = None


class ErrorBody(_Wire):
    """Every error answer: `{"error": {"type", "code", "message", "param"}}`."""

    error: ErrorDetail


class EventData(_Wire):
    object: Annotated[PaymentIntent | Refund, Field(discriminator="object")]


class Event(_Wire):
    """A webhook body. `id` stays the same on every delivery attempt."""

    id: str  # evt_...
    object: Literal["event"] = "event"
    type: EventType
    created: int
    data: EventData


class EventEnvelope(_Wire):
    """Just enough of any event to decide whether to read the rest."""

    id: str
    type: str
    data: dict[str, Any]
