"""Messages to an order's buyer or merchant, stored once each; buyers read theirs via the API."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from db.tables import PartyNotification
from db.writes import insert_ignore


def notify_party(
    session: Session,
    order_id: str,
    recipient: str,
    recipient_id: str | None,
    event: str,
    refund_id: str | None = None,
) -> bool:
    """Queue one notification (once: its id derives from the order, recipient and event).

    `recipient_id` is the buyer's or merchant's id; an order placed without a signed-in
    buyer has none, and its buyer's notifications are kept all the same.
    """
    suffix = f":{refund_id}" if refund_id is not None else ""
    return insert_ignore(
        session,
        PartyNotification,
        {
            "id": f"{order_id}:{recipient}:{event}{suffix}",
            "order_id": order_id,
            "recipient": recipient,
            "recipient_id": recipient_id,
            "event": event,
            "created_at": datetime.now(UTC),
        },
    )
