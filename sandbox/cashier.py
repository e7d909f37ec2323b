"""The cashier: where a buyer sees what they pay and presses Pay or Decline.

Plain HTML forms, no script. Pressing Pay twice is harmless; paying a closed
or declined payment shows an error page and changes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from channels.base import ChannelName
from sandbox.deps import ServiceDep
from sandbox.errors import SandboxError
from sandbox.money import format_amount
from sandbox.pages import checkout_page, result_page
from sandbox.store import PaymentRecord

router = APIRouter(
    prefix="/{channel}/checkout", tags=["cashier"], default_response_class=HTMLResponse
)


def _not_found() -> HTMLResponse:
    return HTMLResponse(
        result_page("Payment not found", "There is no such payment."), status_code=404
    )


@router.get("/{payment_id}")
async def show_checkout(channel: ChannelName, payment_id: str, service: ServiceDep) -> HTMLResponse:
    try:
        payment = await service.store.payment_by_id(channel, payment_id)
    except SandboxError:
        return _not_found()
    return HTMLResponse(checkout_page(payment))


@router.post("/{payment_id}/pay")
async def pay(channel: ChannelName, payment_id: str, service: ServiceDep) -> HTMLResponse:
    try:
        payment = await service.store.payment_by_id(channel, payment_id)
        payment = await service.pay(payment)
    except SandboxError as exc:
        if exc.status_code == 404:
            return _not_found()
        return _outcome(await service.store.payment_by_id(channel, payment_id), status_code=409)
    return _outcome(payment)


@router.post("/{payment_id}/decline")
async def decline(channel: ChannelName, payment_id: str, service: ServiceDep) -> HTMLResponse:
    try:
        payment = await service.store.payment_by_id(channel, payment_id)
        payment = await service.decline(payment)
    except SandboxError as exc:
        if exc.status_code == 404:
            return _not_found()
        return _outcome(await service.store.payment_by_id(channel, payment_id), status_code=409)
    return _outcome(payment)


def _outcome(payment: PaymentRecord, status_code: int = 200) -> HTMLResponse:
    """The page for where the payment now stands."""
    amount = format_amount(payment.amount, payment.currency)
    if payment.payer_amount is not None and payment.payer_currency is not None:
        charged = format_amount(payment.payer_amount, payment.payer_currency)
        amount = f"{charged} for {amount}"
    pages = {
        "paid": ("Payment received", f"You paid {amount}: {payment.description}."),
        "declined": ("Payment declined", "Nothing was charged."),
        "closed": (
            "This payment is closed",
            "It can no longer be paid. Nothing was charged.",
        ),
        "pending": ("Payment pending", "Nothing was charged yet."),
    }
    title, message = pages[payment.status]
    return HTMLResponse(result_page(title, message), status_code=status_code)
