"""POST /v1/orders: validate, claim the idempotency key, start the saga, answer with the checkout.

Everything that can be refused is refused before anything is stored or
started. The Idempotency-Key row records the order id first, so a repeat (even
a concurrent one) starts the same workflow id; once the first response is
stored, repeats replay it byte for byte.

Two transactions around the saga's start, each one thread hop: the key looked up,
the request validated and the key claimed; then the order read and its answer stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import bindparam, update
from sqlmodel import Session, SQLModel, col, select
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth.caller import Caller, Role, Unauthenticated
from api.deps import AppContext
from api.errors import Conflict, InvalidRequest, ServiceUnavailable
from api.pages.checkout_links import checkout_url
from api.schemas import OrderCreate
from api.services.fx_quotes import check_buyer_country, check_price_currency, quote_order
from api.services.order_views import order_out
from api.services.records import new_id, now
from api.services.updates import resending_lost, update_with_start
from channels.base import supports_currency
from db.coupons import check_hold_allowed, coupon_rule
from db.identity import User
from db.tables import Coupon as CouponRow
from db.tables import IdempotencyKey, Merchant, MerchantFxTerms, Order
from db.writes import insert_ignore
from domain.checkout import return_url_refusal
from domain.errors import CouponRejected
from domain.keys import order_workflow_id
from domain.order_status import OrderStatus
from domain.pricing import Coupon, OrderLine, price_order
from domain.saga import SAGA_VERSION, CheckoutRequest, OrderInput, OrderView
from settings import Settings
from workflows.order import OrderWorkflow
from workflows.search_attributes import MERCHANT_ID, ORDER_STATUS, PAYMENT_CHANNEL


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str


def request_hash(body: OrderCreate) -> str:
    # A field added later is left out while unset, so a key stored before it existed
    # still matches a retry of the same body.
    later_fields = ("return_url", "presentment_currency", "buyer_country")
    unset_new_fields = {name for name in later_fields if getattr(body, name) is None}
    fields = body.model_dump(mode="json", exclude=unset_new_fields)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_order(
    context: AppContext, caller: Caller, key: str, body: OrderCreate
) -> StoredResponse:
    key = f"{caller.role}:{caller.id}:{key}"  # each caller's keys are their own
    digest = request_hash(body)
    claim = await asyncio.to_thread(_claim, context, caller, key, digest, body)
    order_input = claim.order_input
    if claim.held is not None:
        held = claim.held
        if held.status_code is not None and held.response_body is not None:
            return StoredResponse(held.status_code, held.response_body)
        # The first request is still under way, or died after claiming the key: join its
        # saga rather than validate again (its own coupon hold would now refuse it).
        if await _join_saga(context, held.order_id):
            return await asyncio.to_thread(_answer, context, key, held.order_id)
        order_input = await asyncio.to_thread(_validated_input, context, caller, body)
        order_input = order_input.model_copy(update={"order_id": held.order_id})
    assert order_input is not None
    await _start_saga(context, order_input)
    return await asyncio.to_thread(_answer, context, key, order_input.order_id)


@dataclass(frozen=True)
class _Claim:
    """The key's row when it was claimed before (`held`), else the new order, claimed."""

    held: IdempotencyKey | None = None
    order_input: OrderInput | None = None


def _claim(context: AppContext, caller: Caller, key: str, digest: str, body: OrderCreate) -> _Claim:
    """In one transaction: the key's earlier claim if any; else the request validated (a
    refusal stores nothing) and the key bound to the new order id (to a concurrent
    twin's order id if that twin claimed it first)."""
    with context.sessions() as session, session.begin():
        held = session.get(IdempotencyKey, key)
        if held is not None:
            if held.request_hash != digest:
                raise _key_reused()
            return _Claim(held=held)
        order_input = _validated_in(session, context.settings, caller, body)
        order_id = _claim_key(session, key, digest, order_input.order_id)
        return _Claim(order_input=order_input.model_copy(update={"order_id": order_id}))


def _key_reused() -> Conflict:
    return Conflict(
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request body",
        "Idempotency-Key",
    )


async def _join_saga(context: AppContext, order_id: str) -> bool:
    """Wait for the checkout of a saga already started; False when there is none (yet)."""
    handle = context.temporal.get_workflow_handle(order_workflow_id(order_id))

    async def send() -> OrderView:
        view: OrderView = await handle.execute_update(
            OrderWorkflow.await_checkout, CheckoutRequest()
        )
        return view

    try:
        await _within_checkout_deadline(context, order_id, send)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return await asyncio.to_thread(_order_recorded, context, order_id)
    return True


def _order_recorded(context: AppContext, order_id: str) -> bool:
    with context.reads() as session:
        return session.get(Order, order_id) is not None


def _validated_input(context: AppContext, caller: Caller, body: OrderCreate) -> OrderInput:
    with context.reads() as session:
        return _validated_in(session, context.settings, caller, body)


# The merchant and its FX terms (None where it has none) in one round trip, built once.
_MERCHANT_AND_FX_TERMS = (
    select(Merchant, MerchantFxTerms)
    .outerjoin(MerchantFxTerms, col(MerchantFxTerms.merchant_id) == col(Merchant.id))
    .where(col(Merchant.id) == bindparam("merchant_id"))
)


def _validated_in(
    session: Session, settings: Settings, caller: Caller, body: OrderCreate
) -> OrderInput:
    lines = [OrderLine(**line.model_dump()) for line in body.lines]
    if caller.role == Role.MERCHANT and body.merchant_id != caller.id:
        message = "a merchant places orders for its own shop only"
        raise InvalidRequest("merchant_not_yours", message, "merchant_id")
    buyer_id = caller.id if caller.role == Role.BUYER else None
    # The order row names its buyer (a foreign key): a valid token of a user this
    # database does not have (restored from an older backup, say) is refused here,
    # not by the saga's first step.
    if buyer_id is not None and session.get(User, buyer_id) is None:
        message = "the signed-in buyer has no account here; sign in again"
        raise Unauthenticated("invalid_credentials", message, "Authorization")
    found = session.execute(_MERCHANT_AND_FX_TERMS, {"merchant_id": body.merchant_id}).first()
    if found is None:
        raise InvalidRequest("merchant_not_found", "no such merchant", "merchant_id")
    merchant, fx_terms = found
    if merchant.status != "active":
        raise InvalidRequest("merchant_suspended", "the merchant is suspended", "merchant_id")
    check_price_currency(fx_terms, body.currency)
    coupon = _usable_coupon(session, body.coupon_code, buyer_id)
    priced = price_order(lines, body.currency, coupon, now())
    check_buyer_country(fx_terms, body.buyer_country)
    timeout, hold = _order_timings(settings, body)
    # A quoted order's channel collects the buyer's currency (checked by quote_order).
    quote = quote_order(
        settings, fx_terms, priced, body.presentment_currency, body.channel, timeout
    )
    channel_name = body.channel
    if quote is None and channel_name and not supports_currency(channel_name, body.currency):
        message = f"{channel_name.value} does not take {body.currency}"
        raise InvalidRequest("currency_not_supported", message, "currency")
    channel = body.channel.value if body.channel is not None else ""
    order_id = new_id("ord")
    order = OrderInput(
        order_id=order_id,
        checkout_url=checkout_url(settings, order_id),
        merchant_id=merchant.id,
        channel=channel,
        merchant_name=merchant.name,
        return_url=_checked_return_url(settings, body.return_url),
        description=body.description,
        buyer_ref=body.buyer_ref,
        buyer_id=buyer_id,
        priced=priced,
        coupon_code=body.coupon_code,
        # No channel yet: its rate and notification URL come with the buyer's choice.
        channel_fee_rate=settings.channel_fee_rates[channel] if channel else Decimal(0),
        commission_rate=Decimal(merchant.commission_rate),
        payment_timeout_seconds=timeout,
        polling=settings.poll,
        auto_complete_seconds=hold,
        notify_url=notify_url(settings, channel) if channel else "",
        quote=quote,
        saga_version=SAGA_VERSION,
    )
    return order.model_copy(update={"started_status": _started_as(order)})


def notify_url(settings: Settings, channel: str) -> str:
    return f"{settings.api_public_url}/v1/channels/{channel}/notify"


def _checked_return_url(settings: Settings, url: str | None) -> str | None:
    """The buyer's way back to the shop; http only where webhooks may be (development)."""
    if url is None:
        return None
    refusal = return_url_refusal(url, allow_http=settings.webhook_allow_private_targets)
    if refusal is not None:
        raise InvalidRequest("return_url_invalid", refusal, "return_url")
    return url


def _order_timings(settings: Settings, body: OrderCreate) -> tuple[int, int]:
    """The payment window and the buyer-protection hold: the caller's within the platform's
    bounds, else the defaults. A shorter hold than the minimum would make the merchant's
    share available before a buyer could ask for a refund, so it is refused, not raised."""
    timeout = _bounded(
        body.payment_timeout_seconds,
        settings.default_payment_timeout_seconds,
        (settings.min_payment_timeout_seconds, settings.max_payment_timeout_seconds),
        "payment_timeout",
    )
    hold = _bounded(
        body.auto_complete_seconds,
        settings.auto_complete_seconds,
        (settings.min_auto_complete_seconds, settings.max_auto_complete_seconds),
        "auto_complete",
    )
    return timeout, hold


def _bounded(asked: int | None, default: int, bounds: tuple[int, int], name: str) -> int:
    if asked is None:
        return default
    low, high = bounds
    param = f"{name}_seconds"
    if asked < low:
        message = f"{param} must be at least {low} on this platform"
        raise InvalidRequest(f"{name}_too_short", message, param)
    if asked > high:
        message = f"{param} must be at most {high} on this platform"
        raise InvalidRequest(f"{name}_too_long", message, param)
    return asked


def _usable_coupon(session: Session, code: str | None, buyer_id: str | None) -> Coupon | None:
    """The coupon if it can take one more hold now; the saga checks again under its lock."""
    if code is None:
        return None
    row = session.get(CouponRow, code)
    if row is None:
        raise CouponRejected("coupon_not_found", f"no coupon {code}", "coupon_code")
    check_hold_allowed(session, row, buyer_id)
    return coupon_rule(row)


def _claim_key(session: Session, key: str, digest: str, order_id: str) -> str:
    """Bind the key to an order id; a concurrent twin gets the winner's order id."""
    values = {"key": key, "request_hash": digest, "order_id": order_id, "created_at": now()}
    if insert_ignore(session, IdempotencyKey, values):
        return order_id
    row = session.get(IdempotencyKey, key)
    assert row is not None
    if row.request_hash != digest:
        raise _key_reused()
    return row.order_id


def _started_as(order: OrderInput) -> OrderStatus:
    """The order's first status in Temporal: awaiting payment when its first step creates
    the payment (the saga publishes only a change from it: one history event less)."""
    return OrderStatus.AWAITING_PAYMENT if order.opens_at_once else OrderStatus.CREATED


async def _start_saga(context: AppContext, order: OrderInput) -> None:
    """Start the workflow (or join the one already started) and wait for its checkout."""

    def start() -> WithStartWorkflowOperation[OrderWorkflow, OrderView]:
        return WithStartWorkflowOperation(
            OrderWorkflow.run,
            order,
            id=order_workflow_id(order.order_id),
            task_queue=context.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(
                        ORDER_STATUS, (order.started_status or OrderStatus.CREATED).value
                    ),
                    SearchAttributePair(MERCHANT_ID, order.merchant_id),
                    # Without a channel yet, the saga sets it at the buyer's choice.
                    *(
                        [SearchAttributePair(PAYMENT_CHANNEL, order.channel)]
                        if order.channel
                        else []
                    ),
                ]
            ),
        )

    async def send() -> OrderView:  # an operation is used once: each attempt its own
        view: OrderView = await update_with_start(
            context.temporal, OrderWorkflow.await_checkout, CheckoutRequest(), start()
        )
        return view

    # WorkflowAlreadyStarted: it ran and ended already (a repeat after a crash); the
    # database has the answer.
    try:
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await _within_checkout_deadline(context, order.order_id, send)
    except WorkflowUpdateFailedError:
        raise ServiceUnavailable("order_start_failed", "the order could not be started") from None


async def _within_checkout_deadline(
    context: AppContext, order_id: str, send: Callable[[], Awaitable[OrderView]]
) -> None:
    """Wait for the checkout for `checkout_deadline_seconds` at most. Past it the saga
    goes on (its create step is retried for the payment window, then the order closes
    as channel_unavailable); the key's response is not stored, so a retry with the same
    key joins the same order and reads its checkout, or how it ended."""
    deadline = context.settings.checkout_deadline_seconds
    try:
        await resending_lost(send, deadline)
    except ServiceUnavailable as timed_out:
        recorded = await asyncio.to_thread(_order_recorded, context, order_id)
        if not recorded:  # no worker has run the saga's first step yet
            raise timed_out from None
        message = (
            f"the payment channel did not take the payment within {deadline:g} s;"
            " retry with the same Idempotency-Key to get this order and its checkout"
        )
        retry_after = max(1, math.ceil(deadline))
        raise ServiceUnavailable("channel_unavailable", message, retry_after=retry_after) from None


# Built once (see db.payments): the key's stored answer, locked; and its first storing.
_KEYS = SQLModel.metadata.tables["idempotency_keys"]
_STORED_ANSWER = (
    select(_KEYS.c.status_code, _KEYS.c.response_body)
    .where(_KEYS.c.key == bindparam("key"))
    .with_for_update()
)
_STORE_ANSWER = (
    update(_KEYS)
    .where(_KEYS.c.key == bindparam("where_key"), _KEYS.c.status_code.is_(None))
    .values(status_code=bindparam("status_code"), response_body=bindparam("response_body"))
)


def _answer(context: AppContext, key: str, order_id: str) -> StoredResponse:
    """The order's answer, stored as the key's first response in the same transaction; a
    concurrent twin that stored first wins, and we answer with its."""
    with context.sessions() as session, session.begin():
        response = _response_in(session, context.settings, order_id)
        status_code, body = session.execute(_STORED_ANSWER, {"key": key}).one()
        if status_code is not None and body is not None:
            return StoredResponse(status_code, body)
        stored = {"status_code": response.status_code, "response_body": response.body}
        session.execute(_STORE_ANSWER, {"where_key": key} | stored)
        return response


def _response_in(session: Session, settings: Settings, order_id: str) -> StoredResponse:
    order = session.get(Order, order_id)
    if order is None:  # the saga refused it at recording: the coupon was taken meanwhile
        body = {
            "error": {
                "type": "invalid_request_error",
                "code": "coupon_already_used",
                "message": "the coupon was used by another order",
                "param": "coupon_code",
            }
        }
        return StoredResponse(400, json.dumps(body))
    answer = order_out(session, order, settings)
    return StoredResponse(201, answer.model_dump_json())
