"""The hosted card page (`hosted_url`): where the buyer types a card, and passes 3-D Secure.

    GET  /card/pay/{intent}               the form, the challenge, or where the payment stands
    POST /card/pay/{intent}               number, expiry, cvc -> the test card's outcome
    POST /card/pay/{intent}/authenticate  outcome=complete|fail, while a challenge is open

A success pays the core payment (`payment.succeeded` goes out); a decline or
a failed challenge records why (`CardMemory`) and declines it
(`payment.declined`). Our saga takes a declined attempt as final, so a
declined intent takes no further card, unlike a real gateway's. Input
errors show the form again (400) and count as no attempt. Nothing of a card
but its brand and last four digits outlives the request, and nothing of it
is logged.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from channels.base import ChannelName
from channels.card.wire import PaymentError
from sandbox import card_html
from sandbox.card_errors import CardError
from sandbox.card_forms import read_form
from sandbox.card_memory import AUTHENTICATION_FAILED, DECLINED, MEMORY, CardSummary
from sandbox.card_testcards import CardInputError, Outcome, present
from sandbox.card_views import payment_id_of
from sandbox.deps import ServiceDep
from sandbox.errors import SandboxError
from sandbox.money import format_amount
from sandbox.service import SandboxService
from sandbox.store import PaymentRecord

router = APIRouter(prefix="/pay", tags=["card"], default_response_class=HTMLResponse)


@router.get("/{intent}")
async def show_page(intent: str, service: ServiceDep) -> HTMLResponse:
    payment = await _find(service, intent)
    if payment is None:
        return _not_found()
    return _where_it_stands(intent, payment)


@router.post("/{intent}")
async def pay_by_card(intent: str, request: Request, service: ServiceDep) -> HTMLResponse:
    payment = await _find(service, intent)
    if payment is None:
        return _not_found()
    if payment.status != "pending" or MEMORY.challenge(payment.payment_id) is not None:
        return _where_it_stands(intent, payment, status_code=409)
    try:
        fields = await read_form(request)
        outcome, card = present(
            fields.get("number", ""),
            fields.get("expiry", ""),
            fields.get("cvc", ""),
            today=datetime.now(UTC).date(),
        )
    except (CardError, CardInputError) as error:
        message = error.message if isinstance(error, CardInputError) else "Please try again."
        return _html(card_html.card_form(payment, _action(intent), message), 400)
    if outcome is Outcome.AUTHENTICATE:
        MEMORY.start_challenge(payment.payment_id, card)
        return _html(card_html.challenge(payment, _action(intent, "authenticate"), card))
    failure = None if outcome is Outcome.SUCCEED else DECLINED
    return await _settle(service, intent, payment, card, failure)


@router.post("/{intent}/authenticate")
async def authenticate(intent: str, request: Request, service: ServiceDep) -> HTMLResponse:
    payment = await _find(service, intent)
    if payment is None:
        return _not_found()
    try:
        answer = (await read_form(request)).get("outcome")
    except CardError:
        answer = None
    if answer not in ("complete", "fail"):
        return _where_it_stands(intent, payment, status_code=400)
    card = MEMORY.end_challenge(payment.payment_id)  # a challenge is answered once
    if card is None or payment.status != "pending":
        return _where_it_stands(intent, payment, status_code=409)
    failure = None if answer == "complete" else AUTHENTICATION_FAILED
    return await _settle(service, intent, payment, card, failure)


async def _settle(
    service: SandboxService,
    intent: str,
    payment: PaymentRecord,
    card: CardSummary,
    failure: PaymentError | None,
) -> HTMLResponse:
    """Pay the core payment, or decline it for `failure`; if it was closed meanwhile, say so."""
    try:
        if failure is None:
            payment = await service.pay(payment)
        else:
            # Recorded first: the webhook renders `last_payment_error` from it.
            MEMORY.record_error(payment.payment_id, failure)
            payment = await service.decline(payment)
    except SandboxError:
        current = await service.store.payment(payment.key)
        return _where_it_stands(intent, current, status_code=409)
    return _where_it_stands(intent, payment, card=card)


def _where_it_stands(
    intent: str, payment: PaymentRecord, *, status_code: int = 200, card: CardSummary | None = None
) -> HTMLResponse:
    return_url = MEMORY.return_url(payment.payment_id)
    if payment.status == "pending":
        challenged = MEMORY.challenge(payment.payment_id)
        if challenged is not None:
            page = card_html.challenge(payment, _action(intent, "authenticate"), challenged)
        else:
            page = card_html.card_form(payment, _action(intent))
    elif payment.status == "paid":
        amount = format_amount(payment.amount, payment.currency)
        paid_with = f" with your {card.label()}" if card else ""
        message = f"You paid {amount}{paid_with}: {payment.description}."
        page = card_html.outcome("Payment succeeded", message, return_url)
    elif payment.status == "declined":
        reason = MEMORY.last_error(payment.payment_id).message or "Your card was declined."
        page = card_html.outcome("Payment failed", f"{reason} Nothing was charged.", return_url)
    else:
        message = "It can no longer be paid. Nothing was charged."
        page = card_html.outcome("This payment is closed", message, return_url)
    return _html(page, status_code)


async def _find(service: SandboxService, intent: str) -> PaymentRecord | None:
    payment_id = payment_id_of(intent)
    if payment_id is None:
        return None
    try:
        return await service.store.payment_by_id(ChannelName.CARD, payment_id)
    except SandboxError:
        return None


def _action(intent: str, step: str = "") -> str:
    return f"/card/pay/{intent}" + (f"/{step}" if step else "")


def _not_found() -> HTMLResponse:
    return _html(card_html.outcome("Payment not found", "There is no such payment."), 404)


def _html(page: str, status_code: int = 200) -> HTMLResponse:
    # The page shows what a buyer paid; no cache should keep it.
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})
