"""What the hosted checkout shows: the order as the buyer sees it, and where it stands.

`checkout_state` names the page to show; the page's script (static/checkout.js) compares
it (and the attempt) with what it rendered and reloads when either moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import segno
from markupsafe import Markup
from sqlmodel import Session, col, select

from channels.base import ChannelName, takes_order
from db.payments import current_payment
from db.tables import Merchant, Order, OrderLine, OrderQuote, OrderReturnUrl, Payment
from domain.order_status import PAID_STATUSES, OrderStatus

_GIVEN_BACK = {OrderStatus.REFUNDING, OrderStatus.REFUNDED, OrderStatus.COMPENSATION_FAILED}
_CLOSED_BY_REASON = {"payment_timeout": "timeout", "payment_declined": "declined"}
# States after which nothing more will happen on the page.
FINAL_STATES = frozenset({"paid", "timeout", "declined", "cancelled", "closed", "refunded"})


def checkout_state(status: str, close_reason: str | None, channel: str) -> str:
    """choose | pay | paid | timeout | declined | cancelled | closed | refunded | wait."""
    if status in PAID_STATUSES:
        return "paid"
    if status in _GIVEN_BACK:
        return "refunded"
    if status == OrderStatus.CANCELLED:
        return "cancelled"
    if status in (OrderStatus.CLOSED, OrderStatus.REJECTED):
        return _CLOSED_BY_REASON.get(close_reason or "", "closed")
    if status == OrderStatus.AWAITING_PAYMENT:
        return "pay" if channel else "choose"
    return "wait"  # created: the saga has not opened the order yet


def offered_channels(currency: str, presentment_currency: str | None = None) -> list[str]:
    """The methods the buyer may choose: every channel that collects what the buyer pays,
    the quoted `presentment_currency` if there is one, else the order's `currency`."""
    return [name.value for name in ChannelName if takes_order(name, currency, presentment_currency)]


def qr_svg(payload: str) -> Markup:
    """The channel's code URL as an inline SVG QR code (our page draws it: no image host)."""
    code = segno.make(payload, error="m")
    svg = code.svg_inline(scale=5, border=2, svgclass="qr", title="QR code")
    return Markup(svg)


@dataclass(frozen=True)
class CheckoutFacts:
    order: Order
    merchant_name: str
    lines: list[OrderLine]
    payment: Payment | None
    state: str
    return_url: str | None
    presentment_currency: str | None = None  # a quoted order: what the buyer pays in


def read_checkout(session: Session, order_id: str) -> CheckoutFacts | None:
    order = session.get(Order, order_id)
    if order is None:
        return None
    merchant = session.get(Merchant, order.merchant_id)
    lines = session.exec(
        select(OrderLine).where(OrderLine.order_id == order_id).order_by(col(OrderLine.line_no))
    ).all()
    return CheckoutFacts(
        order=order,
        merchant_name=merchant.name if merchant is not None else "",
        lines=list(lines),
        payment=current_payment(session, order_id),
        state=checkout_state(order.status, order.close_reason, order.channel),
        return_url=back.return_url if (back := session.get(OrderReturnUrl, order_id)) else None,
        presentment_currency=quote.presentment_currency
        if (
            quote := session.exec(select(OrderQuote).where(OrderQuote.order_id == order_id)).first()
        )
        else None,
    )
