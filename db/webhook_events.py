"""Recording merchant webhook events: one row per event, its body made once from the order.

The body carries the order as the merchant knows it (amounts, status, refund) and
nothing secret: no card data, no channel credentials, no buyer identity beyond the
merchant's own `buyer_ref`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from db.tables import Merchant, Order, Refund, WebhookEvent
from db.writes import insert_ignore
from domain.keys import webhook_event_id
from domain.webhook_events import EventType, event_body

# Built once (see db.payments): where the merchant takes its events, if anywhere.
_WEBHOOK_URL = select(Merchant.webhook_url).where(col(Merchant.id) == bindparam("merchant_id"))


def record_order_event(
    session: Session, order: Order, event_type: EventType, refund: Refund | None = None
) -> str | None:
    """Store the event (once; its id derives from the order, type and refund).

    Returns the event id when the merchant has a webhook URL to deliver it to, and
    None when it has none: the event is kept, and never sent.
    """
    event_id = webhook_event_id(order.id, event_type, refund.id if refund else None)
    created = datetime.now(UTC)
    insert_ignore(
        session,
        WebhookEvent,
        {
            "id": event_id,
            "merchant_id": order.merchant_id,
            "order_id": order.id,
            "type": event_type.value,
            "payload": event_body(event_id, event_type, created, order_data(order, refund)),
            "created_at": created,
        },
    )
    url = session.exec(_WEBHOOK_URL, params={"merchant_id": order.merchant_id}).first()
    return event_id if url else None


def order_data(order: Order, refund: Refund | None = None) -> dict[str, object]:
    """The `data` of an order event: the order, and the refund the event is about."""
    data: dict[str, object] = {
        "id": order.id,
        "merchant_id": order.merchant_id,
        "status": str(order.status),
        "channel": order.channel,
        "currency": order.currency,
        "description": order.description,
        "buyer_ref": order.buyer_ref,
        "amounts": {
            "total": order.total_amount,
            "discount": order.discount_amount,
            "payable": order.payable_amount,
        },
        "refunded_amount": order.refunded_amount,
        "close_reason": order.close_reason,
        "created": _unix(order.created_at),
    }
    if refund is not None:
        data["refund"] = {
            "id": refund.id,
            "amount": refund.amount,
            "currency": refund.currency,
            "status": str(refund.status),
            "reason": refund.reason,
            "requested_by": refund.requested_by,
        }
    return data


def _unix(moment: datetime) -> int:
    # SQLite hands datetimes back without their zone; we only ever store UTC.
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())
