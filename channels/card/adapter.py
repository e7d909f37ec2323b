"""The card gateway adapter: a PaymentIntents-style API, a hosted card page, signed webhooks.

    create_payment   POST /v1/payment_intents               Idempotency-Key {order_id}:create
    query_payment    GET  /v1/payment_intents/search?query=metadata['order_id']:'...'
    close_payment    search, then POST /v1/payment_intents/{id}/cancel   {order_id}:cancel
    refund           search, then POST /v1/refunds           {refund_id}:refund
    query_refund     GET  /v1/refunds/search?query=metadata['refund_id']:'...' (and our order)
    webhooks         `Card-Signature: t=..,v1=..` over the raw body (`channels.signature`)

Everything is found by our own ids (in `metadata`), so nothing of the
gateway's has to be stored before it can be asked about. Status mapping and
request building are in `channels.card.mapping`; I/O and error mapping in
`channels.card.transport`. Going live is `CardSettings`: base URL and keys.
"""

from __future__ import annotations

import json
import time
import typing
from collections.abc import Callable, Mapping
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from channels.base import (
    Acknowledgement,
    ChannelName,
    CloseResult,
    CreatedPayment,
    CreatePaymentRequest,
    Notification,
    PaymentState,
    PaymentStatus,
    RefundRequest,
    RefundState,
)
from channels.card import mapping, wire
from channels.card.transport import CardApi
from channels.errors import (
    ChannelRejected,
    ChannelUnavailable,
    NotificationFormatError,
    PaymentNotFound,
)
from channels.signature import verify
from settings import CardSettings

# Cancelling an intent that already succeeded (or was cancelled) is refused with this code.
UNEXPECTED_STATE = "payment_intent_unexpected_state"
ACKNOWLEDGEMENT = Acknowledgement(
    status_code=200, body='{"received":true}', media_type="application/json"
)

_KNOWN_EVENTS = frozenset(typing.get_args(wire.EventType))
_T = typing.TypeVar("_T")
_R = typing.TypeVar("_R")


def unix_now() -> int:
    return int(time.time())


class CardAdapter:
    """One card gateway account. Methods raise `channels.errors.ChannelError` subclasses.

    The client is injected so that its timeout and connection pool are owned
    by the caller; `clock` (unix seconds) judges webhook timestamps.
    """

    name = ChannelName.CARD

    def __init__(
        self,
        config: CardSettings,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        tolerance_seconds: int,
        clock: Callable[[], int] = unix_now,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api = CardApi(base_url, config.secret_key.get_secret_value(), client)
        self._webhook_secret = config.webhook_secret.get_secret_value().encode()
        self._tolerance_seconds = tolerance_seconds
        self._clock = clock

    def __repr__(self) -> str:  # keep the keys out of any accidental repr
        return f"CardAdapter(base_url={self._base_url!r})"

    async def create_payment(self, request: CreatePaymentRequest) -> CreatedPayment:
        """Create the intent, or get back the one this order's key already made."""
        intent = await self._api.post(
            "/v1/payment_intents",
            wire.PaymentIntent,
            mapping.create_params(request),
            mapping.create_key(request.order_id),
        )
        return CreatedPayment(channel_payment_id=intent.id, checkout_url=intent.hosted_url)

    async def query_payment(self, order_id: str) -> PaymentState:
        return _readable(mapping.payment_state, await self._find_intent(order_id))

    async def close_payment(self, order_id: str) -> CloseResult:
        """Cancel the intent; if the buyer paid first, say so (closed=False, PAID).

        A declined intent can be cancelled too; the gateway keeps showing the
        failed attempt, so the result is closed=True with a DECLINED state.
        """
        intent = await self._find_intent(order_id)
        try:
            intent = await self._api.post(
                f"/v1/payment_intents/{_segment(intent.id)}/cancel",
                wire.PaymentIntent,
                {},
                mapping.cancel_key(order_id),
            )
        except ChannelRejected as error:
            if error.code != UNEXPECTED_STATE:
                raise
            # Already succeeded (the buyer paid first) or cancelled: ask which.
            intent = await self._api.get(
                f"/v1/payment_intents/{_segment(intent.id)}", wire.PaymentIntent
            )
        state = _readable(mapping.payment_state, intent)
        if state.status is PaymentStatus.PENDING:
            raise ChannelRejected(
                f"card intent {intent.id} is still {intent.status} after cancel",
                code=UNEXPECTED_STATE,
            )
        return CloseResult(closed=state.status is not PaymentStatus.PAID, payment=state)

    async def refund(self, request: RefundRequest) -> RefundState:
        """Refund part or all of the order's intent, once per refund_id."""
        intent = await self._find_intent(request.order_id)
        if intent.currency.upper() != request.currency.upper():
            # The gateway refunds in the intent's currency; asking for another is our bug.
            raise ChannelRejected(
                f"card refund {request.refund_id}: currency differs from the payment's",
                code="currency_mismatch",
            )
        refund = await self._api.post(
            "/v1/refunds",
            wire.Refund,
            mapping.refund_params(request, intent.id),
            mapping.refund_key(request.refund_id),
        )
        return _readable(mapping.refund_state, refund)

    async def query_refund(self, refund_id: str, order_id: str) -> RefundState:
        """The refund with our refund_id; one for another order is not ours to report."""
        result = await self._api.get(
            "/v1/refunds/search",
            wire.SearchResult[wire.Refund],
            {"query": mapping.metadata_query(mapping.REFUND_ID, refund_id)},
        )
        states = [_readable(mapping.refund_state, refund) for refund in result.data]
        for state in states:
            if state.order_id == order_id:
                return state
        raise PaymentNotFound("card has no refund with that refund_id", code="resource_missing")

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> Notification | None:
        """Verify the signature over the raw body, then parse it.

        Returns None for an event type we do not act on and for a refund that
        is not final yet. Raises `NotificationSignatureError` for a bad,
        missing, malformed or stale signature and `NotificationFormatError`
        for a body that cannot be read.
        """
        verify(
            self._webhook_secret,
            body,
            _header(headers, wire.SIGNATURE_HEADER),
            now=self._clock(),
            tolerance_seconds=self._tolerance_seconds,
        )
        try:
            if wire.EventEnvelope.model_validate_json(body).type not in _KNOWN_EVENTS:
                return None
            return mapping.notification(wire.Event.model_validate_json(body))
        except ValidationError as exc:
            raise _unreadable_notification(f"{exc.error_count()} error(s)") from None
        except mapping.UnreadableObject as exc:
            raise _unreadable_notification(str(exc)) from None

    def acknowledgement(self) -> Acknowledgement:
        return ACKNOWLEDGEMENT

    def rejection(self, status_code: int, error: Mapping[str, object]) -> Acknowledgement:
        """Any non-2xx makes the gateway send again; our JSON error says why."""
        return Acknowledgement(
            status_code=status_code, body=json.dumps(error), media_type="application/json"
        )

    async def _find_intent(self, order_id: str) -> wire.PaymentIntent:
        result = await self._api.get(
            "/v1/payment_intents/search",
            wire.SearchResult[wire.PaymentIntent],
            {"query": mapping.metadata_query(mapping.ORDER_ID, order_id)},
        )
        intent = mapping.chosen_intent(result.data)
        if intent is None:
            raise PaymentNotFound("card has no payment for that order", code="resource_missing")
        return intent


def _readable(convert: Callable[[_T], _R], answer: _T) -> _R:
    """An answer we cannot map is the gateway's fault, not a refusal: retry may help."""
    try:
        return convert(answer)
    except mapping.UnreadableObject as exc:
        raise ChannelUnavailable(
            f"card answer unreadable: {exc}", code="invalid_response"
        ) from None


def _unreadable_notification(detail: str) -> NotificationFormatError:
    return NotificationFormatError(
        f"unreadable card notification: {detail}", code="notification_malformed"
    )


def _segment(value: str) -> str:
    """One path segment: an id must not change the route."""
    return quote(value, safe="")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that also works for a plain dict."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)
