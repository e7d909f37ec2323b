"""The hosted checkout for buyers: /checkout/{order id}?t={token}.

No account needed: the link's token is the capability (api.pages.checkout_links);
without it, or with a wrong one, the page is a 404 like an order that does not exist.
The buyer sees the shop, the lines, the coupon and the amount, chooses a method (the
saga's choose_method update opens the payment there, closing one open elsewhere),
scans the QR code or follows the link to the channel's page, and the page follows the
order (static/checkout.js asks /status, which waits for a change) until it shows the
receipt or how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from temporalio.client import WorkflowUpdateFailedError

from api.deps import AppContext, ContextDep
from api.errors import ServiceUnavailable
from api.order_waits import wait_for_move
from api.order_watch import CallerWaitsFull, WatchFull, order_version
from api.pages.checkout_links import checkout_path, link_opens
from api.pages.checkout_view import (
    FINAL_STATES,
    CheckoutFacts,
    offered_channels,
    qr_svg,
    read_checkout,
)
from api.pages.render import PAGE_HEADERS, render
from api.services.order_creation import notify_url
from api.services.updates import resending_lost
from domain.keys import order_workflow_id
from domain.saga import MethodChoice, OrderView
from workflows.order import OrderWorkflow

router = APIRouter(include_in_schema=False)  # HTML (and its own poll), not the JSON API
Token = Annotated[str | None, Query(alias="t")]
# How long a page's status request may wait: under the idle timeouts of common proxies.
MAX_STATUS_WAIT_SECONDS = 30


async def _facts(context: AppContext, order_id: str, token: str | None) -> CheckoutFacts | None:
    if not link_opens(context.settings, order_id, token):
        return None
    return await asyncio.to_thread(_read, context, order_id)


def _read(context: AppContext, order_id: str) -> CheckoutFacts | None:
    with context.reads() as session:
        return read_checkout(session, order_id)


def _not_found(request: Request) -> Response:
    values = {"title": "Not found", "message": "Page not found."}
    return render(request, "message.html", values, status_code=404)


@router.get("/checkout/{order_id}")
async def checkout_page(
    order_id: str, request: Request, context: ContextDep, t: Token = None, error: str = ""
) -> Response:
    facts = await _facts(context, order_id, t)
    if facts is None:
        return _not_found(request)
    return _render(request, facts, t or "", error)


def _render(request: Request, facts: CheckoutFacts, token: str, error: str = "") -> Response:
    payment = facts.payment
    values: dict[str, Any] = {
        "title": "Checkout",
        "facts": facts,
        "order": facts.order,
        "token": token,
        "channels": offered_channels(facts.order.currency, facts.presentment_currency),
        "qr": qr_svg(payment.qr_payload) if payment and payment.qr_payload else None,
        "final": facts.state in FINAL_STATES,
        "error": error,
    }
    return render(request, "checkout.html", values)


@router.get("/checkout/{order_id}/status")
async def checkout_status(
    order_id: str,
    request: Request,
    context: ContextDep,
    t: Token = None,
    state: str | None = None,
    attempt: int | None = None,
    wait: Annotated[float, Query(ge=0, le=MAX_STATUS_WAIT_SECONDS)] = 0,
) -> Response:
    """What the page's script asks: where the order stands, and its payment attempt. Told
    the `state` and `attempt` the page shows and a `wait`, the answer waits for the order
    to change (the checkout's watch of the order's status and last change: one read an
    interval for every waiting page; a method chosen or lines changed elsewhere wake it
    too) until `wait` seconds end, unless the page is already behind. A full watch (or
    an order with PAYSAGA_CHECKOUT_WAIT_PER_ORDER pages waiting) answers at once: the
    page asks again after a pause, as it polled before."""
    facts = await _facts(context, order_id, t)
    if facts is not None and wait and _shows(facts, state, attempt):
        order = facts.order
        version = order_version(order.status, order.updated_at)
        with contextlib.suppress(WatchFull, CallerWaitsFull):
            # Every page of one order is one caller: its link is its only credential.
            watch = context.checkout_watch
            await wait_for_move(context, watch, request, order.id, version, wait, order.id)
        facts = await _facts(context, order_id, t)
    if facts is None:
        return JSONResponse({"error": "not_found"}, status_code=404, headers=PAGE_HEADERS)
    body = {"state": facts.state, "attempt": _attempt(facts), "final": facts.state in FINAL_STATES}
    return JSONResponse(body, headers=PAGE_HEADERS)


def _attempt(facts: CheckoutFacts) -> int:
    return facts.payment.attempt if facts.payment else 0


def _shows(facts: CheckoutFacts, state: str | None, attempt: int | None) -> bool:
    """Whether the page that asks shows the order as it stands, so that it has something
    to wait for (a final state has nothing)."""
    unchanged = facts.state == state and _attempt(facts) == attempt
    return unchanged and facts.state not in FINAL_STATES


@router.post("/checkout/{order_id}/method")
async def choose_method(
    order_id: str,
    request: Request,
    context: ContextDep,
    t: Annotated[str, Form()] = "",
    channel: Annotated[str, Form()] = "",
) -> Response:
    """The buyer's choice: the saga opens the payment at that channel; back to the page."""
    facts = await _facts(context, order_id, t)
    if facts is None:
        return _not_found(request)
    if channel not in offered_channels(facts.order.currency, facts.presentment_currency):
        return _render(request, facts, t, "Choose one of the methods shown.")
    choice = MethodChoice(
        channel=channel,
        channel_fee_rate=context.settings.channel_fee_rates[channel],
        notify_url=notify_url(context.settings, channel),
    )
    handle = context.temporal.get_workflow_handle(order_workflow_id(order_id))

    async def send() -> OrderView:
        view: OrderView = await handle.execute_update(OrderWorkflow.choose_method, choice)
        return view

    problem = ""
    try:
        await resending_lost(send, context.settings.checkout_deadline_seconds)
    except WorkflowUpdateFailedError:
        problem = "This method could not be chosen now."
    except ServiceUnavailable:
        problem = "The payment service is busy; please try again."
    if problem:
        facts = await _facts(context, order_id, t) or facts
        return _render(request, facts, t, problem)
    return RedirectResponse(checkout_path(context.settings, order_id), status_code=303)
