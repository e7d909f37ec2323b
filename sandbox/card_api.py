"""The card gateway's API, over the sandbox core: PaymentIntents and Refunds.

    POST /card/v1/payment_intents                 amount, currency, description,
                                                  metadata[order_id], metadata[merchant_id],
                                                  webhook_url, return_url (optional)
    GET  /card/v1/payment_intents/search          query=metadata['order_id']:'...'
    GET  /card/v1/payment_intents/{id}
    POST /card/v1/payment_intents/{id}/cancel
    POST /card/v1/refunds                         payment_intent, amount (default: all),
                                                  metadata[refund_id], metadata[order_id]
    GET  /card/v1/refunds/search                  query=metadata['refund_id']:'...'

`Authorization: Bearer <secret key>` (compared in constant time; a wrong key
is never echoed); form-encoded bodies; JSON answers; errors in the gateway's
shape (`card_errors`). POSTs honour `Idempotency-Key` (`card_idempotency`).

Where this differs from Stripe: `webhook_url` is per payment (as Mollie
takes one), since the sandbox has no dashboard to configure an endpoint;
the sandbox requires our two metadata keys (it keys payments by order id)
and keeps no other metadata; the search language is just one
`metadata['key']:'value'` clause; a refund cannot be fetched by its `re_` id.
"""

from __future__ import annotations

import hmac
import re
from typing import TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from channels.base import ChannelName, accepted_currencies, supports_currency
from channels.card.wire import PaymentIntent, Refund, SearchResult
from sandbox import card_views
from sandbox.card_errors import CardError, CardRoute
from sandbox.card_forms import Params, read_form
from sandbox.card_idempotency import IdempotencyKeys, fingerprint
from sandbox.card_memory import MEMORY
from sandbox.deps import ServiceDep
from sandbox.errors import SandboxError
from sandbox.protocol import PaymentCreate, RefundCreate
from sandbox.service import SandboxService, fail_if_faulted
from sandbox.store import PaymentRecord, RefundRecord

CARD = ChannelName.CARD
_Core = TypeVar("_Core", PaymentCreate, RefundCreate)
IDEMPOTENCY = IdempotencyKeys()

_CREATE_PARAMS = frozenset(
    {
        "amount",
        "currency",
        "description",
        "metadata[order_id]",
        "metadata[merchant_id]",
        "webhook_url",
        "return_url",
    }
)
_REFUND_PARAMS = frozenset(
    {"payment_intent", "amount", "metadata[refund_id]", "metadata[order_id]"}
)
# The core's field names, as the gateway's parameters.
_PARAM_OF_FIELD = {
    "out_trade_no": "metadata[order_id]",
    "merchant_id": "metadata[merchant_id]",
    "refund_id": "metadata[refund_id]",
    "notify_url": "webhook_url",
}
# `metadata['key']:'value'`, where the value may hold \' and \\.
_METADATA_QUERY = re.compile(r"\s*metadata\['(\w+)'\]\s*:\s*'((?:[^'\\]|\\.)*)'\s*")


async def require_secret_key(request: Request) -> None:
    expected = f"Bearer {request.app.state.settings.card.secret_key.get_secret_value()}"
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(expected.encode(), given.encode("latin-1", "replace")):
        raise CardError(
            401,
            "invalid_api_key",
            "Invalid API key provided.",
            type_="authentication_error",
        )


router = APIRouter(prefix="/v1", route_class=CardRoute, dependencies=[Depends(require_secret_key)])


@router.post("/payment_intents")
async def create_payment_intent(request: Request, service: ServiceDep) -> Response:
    fields = await read_form(request)
    params = Params(fields, _CREATE_PARAMS)
    create = _core_model(
        PaymentCreate,
        out_trade_no=params.required("metadata[order_id]"),
        merchant_id=params.required("metadata[merchant_id]"),
        amount=params.positive_integer("amount"),
        currency=_presentment_currency(params),
        description=params.text("description", required=False) or "",
        notify_url=params.url("webhook_url"),
    )
    return_url = params.url("return_url", required=False)

    async def create_once() -> PaymentIntent:
        await service.create_payment(CARD, create)
        payment = await service.store.payment((CARD, create.out_trade_no))
        if return_url:
            MEMORY.remember_return_url(payment.payment_id, return_url)
        return _intent(request, payment)

    key = request.headers.get("idempotency-key")
    return await IDEMPOTENCY.run(key, fingerprint("POST", request.url.path, fields), create_once)


def _presentment_currency(params: Params) -> str:
    """The intent's currency, refused as Stripe refuses one it does not support: an
    invalid_request_error on `currency` that carries no code."""
    currency = params.matching("currency", r"[a-z]{3}", hint="a lower-case ISO code")
    if not supports_currency(CARD, currency.upper()):
        supported = ", ".join(sorted(c.lower() for c in accepted_currencies(CARD)))
        message = f"Invalid currency: {currency}. The gateway supports: {supported}."
        raise CardError(400, None, message, param="currency")
    return currency.upper()


@router.get("/payment_intents/search")
async def search_payment_intents(
    request: Request, service: ServiceDep
) -> SearchResult[PaymentIntent]:
    order_id = _metadata_query(request, "order_id")
    await fail_if_faulted(service.store, order_id)
    try:
        payment = await service.store.payment((CARD, order_id))
    except SandboxError as error:
        if error.status_code == 404:
            return SearchResult[PaymentIntent](data=[])
        raise
    return SearchResult[PaymentIntent](data=[_intent(request, payment)])


@router.get("/payment_intents/{intent}")
async def retrieve_payment_intent(
    intent: str, request: Request, service: ServiceDep
) -> PaymentIntent:
    payment = await _payment(service, intent)
    await fail_if_faulted(service.store, payment.out_trade_no)
    return _intent(request, payment)


@router.post("/payment_intents/{intent}/cancel")
async def cancel_payment_intent(intent: str, request: Request, service: ServiceDep) -> Response:
    """Cancel a payment not yet paid; a succeeded or cancelled one is refused (400)."""
    fields = await read_form(request)
    Params(fields, frozenset())

    async def cancel_once() -> PaymentIntent:
        payment = await _payment(service, intent)
        closed = await service.close_payment(CARD, payment.out_trade_no)
        if not closed.closed or payment.status == "closed":
            status = "succeeded" if not closed.closed else "canceled"
            raise CardError(
                400,
                "payment_intent_unexpected_state",
                f"You cannot cancel this PaymentIntent because it has a status of {status}.",
            )
        return _intent(request, await service.store.payment(payment.key))

    key = request.headers.get("idempotency-key")
    return await IDEMPOTENCY.run(key, fingerprint("POST", request.url.path, fields), cancel_once)


@router.post("/refunds")
async def create_refund(request: Request, service: ServiceDep) -> Response:
    fields = await read_form(request)
    params = Params(fields, _REFUND_PARAMS)
    intent = params.required("payment_intent")
    refund_id = params.required("metadata[refund_id]")
    amount = params.positive_integer("amount", required=False)
    order_id = params.text("metadata[order_id]", required=False)

    async def refund_once() -> Refund:
        payment = await _payment(service, intent, param="payment_intent")
        if order_id is not None and order_id != payment.out_trade_no:
            raise CardError(
                400,
                "parameter_invalid_string",
                "metadata[order_id] is not the payment_intent's order.",
                param="metadata[order_id]",
            )
        create = _core_model(
            RefundCreate,
            refund_id=refund_id,
            out_trade_no=payment.out_trade_no,
            amount=amount or payment.amount,
            currency=payment.currency,
        )
        await service.create_refund(CARD, create)
        return _refund(await service.store.refund((CARD, refund_id)), payment)

    key = request.headers.get("idempotency-key")
    return await IDEMPOTENCY.run(key, fingerprint("POST", request.url.path, fields), refund_once)


@router.get("/refunds/search")
async def search_refunds(request: Request, service: ServiceDep) -> SearchResult[Refund]:
    refund_id = _metadata_query(request, "refund_id")
    try:
        refund = await service.store.refund((CARD, refund_id))
    except SandboxError as error:
        if error.status_code == 404:
            return SearchResult[Refund](data=[])
        raise
    await fail_if_faulted(service.store, refund.out_trade_no)
    payment = await service.store.payment((CARD, refund.out_trade_no))
    return SearchResult[Refund](data=[_refund(refund, payment)])


def _intent(request: Request, payment: PaymentRecord) -> PaymentIntent:
    base_url: str = request.app.state.settings.sandbox_base_url
    return card_views.payment_intent(payment, base_url, MEMORY)


def _refund(refund: RefundRecord, payment: PaymentRecord) -> Refund:
    return card_views.refund(
        refund_id=refund.refund_id,
        order_id=refund.out_trade_no,
        payment_id=payment.payment_id,
        txn_id=payment.txn_id,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
    )


async def _payment(
    service: SandboxService, intent: str, *, param: str | None = None
) -> PaymentRecord:
    payment_id = card_views.payment_id_of(intent)
    try:
        if payment_id is None:
            raise SandboxError(404, "payment_not_found")
        return await service.store.payment_by_id(CARD, payment_id)
    except SandboxError as error:
        if error.status_code == 404:
            raise CardError(
                404, "resource_missing", "No such payment_intent.", param=param
            ) from None
        raise


def _metadata_query(request: Request, key: str) -> str:
    """The value of the one clause the sandbox understands: `metadata['<key>']:'<value>'`."""
    query = request.query_params.get("query", "")
    match = _METADATA_QUERY.fullmatch(query)
    if match is None or match[1] != key:
        raise CardError(
            400,
            "parameter_invalid_string",
            f"The sandbox searches by metadata['{key}']:'<value>' only.",
            param="query",
        )
    return re.sub(r"\\(.)", r"\1", match[2])


def _core_model(model: type[_Core], **fields: object) -> _Core:
    """The core's request model; a value it refuses is named by the gateway's parameter."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        param = _PARAM_OF_FIELD.get(name, name)
        raise CardError(
            400, "parameter_invalid", f"Invalid {param}: {error['msg']}.", param=param
        ) from None
