"""An order's whole story on one timeline: its saga's steps (from the workflow history),
each payment attempt, refunds, ledger entries, webhook deliveries and notifications.

`saga_steps` turns history events into readable steps and is pure: the history may come
from the server (`workflow_history`) or from a file (tests). Each step the saga takes is
a local activity, recorded as a marker whose details name the activity.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent, MarkerRecordedEventAttributes
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError

from api.pages.formats import money
from db.payments import payment_attempts
from db.tables import JournalEntry, PartyNotification, Posting, Refund, WebhookEvent
from domain.keys import order_workflow_id

logger = logging.getLogger(__name__)

# What each step of the saga is, said for a person (activity type -> words).
_STEP_NAMES = {
    "record_order": "Order recorded",
    "create_payment": "Payment created at the channel",
    "record_and_create_payment": "Order recorded · Payment created at the channel",
    "query_payment": "Asked the channel about the payment",
    "close_payment": "Payment closed at the channel",
    "record_payment": "Payment recorded",
    "record_and_settle": "Payment recorded · Split posted to the ledger",
    "notify_and_release": "Buyer and merchant notified · Merchant's share released",
    # Without the receipt hold it releases the share too (_fulfilled_title says so).
    "fulfil_payment": "Payment recorded · Split posted to the ledger · Buyer and merchant notified",
    "settle_order": "Split posted to the ledger",
    "notify_parties": "Buyer and merchant notified",
    "release_funds": "Merchant's share released",
    "set_order_status": "Status changed",
    "flag_for_review": "Flagged for review",
    "reverse_settlement": "Ledger entries reversed",
    "refund_payment": "Refund asked at the channel",
    "refund_once": "Refund asked at the channel",
    "check_refund": "Asked the channel about the refund",
    "record_modification": "Modification recorded",
    "reprice_order": "Order re-priced",
}
_SIGNAL_NAMES = {
    "payment_notification": "Channel notification received",
    "cancel": "Cancellation asked",
    "retry_compensation": "Operator asked to retry the compensation",
}
_ENDINGS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "Saga finished",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "Saga failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "Saga terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "Saga timed out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "Saga continued as new",
}


@dataclass(frozen=True)
class Moment:
    """One line of the timeline."""

    at: datetime
    kind: str  # step | payment | refund | ledger | webhook | notification
    title: str
    detail: str = ""
    status: str = ""
    event_id: str | None = None  # a webhook event's id: it can be resent


def saga_steps(history: WorkflowHistory) -> list[Moment]:
    steps: list[Moment] = []
    for event in history.events:
        at = event.event_time.ToDatetime(tzinfo=UTC)
        title = _step_title(event)
        if title:
            steps.append(Moment(at=at, kind="step", title=title))
    return steps


def _step_title(event: HistoryEvent) -> str | None:
    kind = event.event_type
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        return "Saga started"
    if kind == EventType.EVENT_TYPE_MARKER_RECORDED:
        attributes = event.marker_recorded_event_attributes
        activity = _marker_activity(attributes)
        if activity == "fulfil_payment":
            return _fulfilled_title(attributes)
        return (
            _STEP_NAMES.get(activity, activity.replace("_", " ").capitalize()) if activity else None
        )
    if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        name = event.activity_task_scheduled_event_attributes.activity_type.name
        return _STEP_NAMES.get(name, name.replace("_", " ").capitalize())
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
        name = event.workflow_execution_signaled_event_attributes.signal_name
        return _SIGNAL_NAMES.get(name, f"Signal: {name}")
    if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
        name = event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        return f"Request: {name.replace('_', ' ')}"
    if kind == EventType.EVENT_TYPE_TIMER_FIRED:
        return "Timer fired"
    return _ENDINGS.get(kind)


def _fulfilled_title(attributes: MarkerRecordedEventAttributes) -> str:
    """fulfil_payment's step, with the release when its result says it released the share."""
    title = _STEP_NAMES["fulfil_payment"]
    payloads = attributes.details.get("result")
    try:
        result = json.loads(payloads.payloads[0].data) if payloads and payloads.payloads else {}
    except ValueError:
        result = {}
    released = isinstance(result, dict) and result.get("released_amount") is not None
    return f"{title} · Merchant's share released" if released else title


def _marker_activity(attributes: MarkerRecordedEventAttributes) -> str | None:
    """The activity type a local activity's marker names, or None for another marker."""
    payloads = attributes.details.get("data")
    if payloads is None or not payloads.payloads:
        return None
    try:
        data = json.loads(payloads.payloads[0].data)
    except ValueError:
        return None
    activity = data.get("activity_type") if isinstance(data, dict) else None
    return activity if isinstance(activity, str) else None


async def workflow_history(client: Client, order_id: str) -> WorkflowHistory | None:
    """The order saga's history, or None when the server cannot give it now (the
    page then says so rather than failing)."""
    try:
        return await client.get_workflow_handle(order_workflow_id(order_id)).fetch_history()
    except RPCError as error:
        logger.info("no history for order %s: %s", order_id, error.status)
        return None


def recorded_moments(session: Session, order_id: str) -> list[Moment]:
    """What the database keeps of the order: attempts, refunds, entries, events, messages."""
    moments: list[Moment] = []
    for payment in payment_attempts(session, order_id):
        moments.append(
            Moment(
                at=payment.paid_at or payment.updated_at,
                kind="payment",
                title=f"Payment attempt {payment.attempt} ({payment.channel})",
                detail=money(payment.amount, payment.currency),
                status=payment.status,
            )
        )
    refunds = select(Refund).where(Refund.order_id == order_id)
    for refund in session.exec(refunds.order_by(col(Refund.created_at))).all():
        moments.append(
            Moment(
                at=refund.created_at,
                kind="refund",
                title=f"Refund {refund.id} ({refund.requested_by})",
                detail=money(refund.amount, refund.currency)
                + (f" · {refund.failure_reason}" if refund.failure_reason else ""),
                status=refund.status,
            )
        )
    entries = select(JournalEntry).where(JournalEntry.order_id == order_id)
    for entry in session.exec(entries.order_by(col(JournalEntry.created_at))).all():
        postings = session.exec(select(Posting).where(Posting.entry_id == entry.id)).all()
        legs = ", ".join(
            f"{posting.account.split(':')[0]} {posting.amount:+d}" for posting in postings
        )
        moments.append(
            Moment(at=entry.created_at, kind="ledger", title=f"Ledger: {entry.kind}", detail=legs)
        )
    events = select(WebhookEvent).where(WebhookEvent.order_id == order_id)
    for event in session.exec(events.order_by(col(WebhookEvent.created_at))).all():
        moments.append(
            Moment(
                at=event.created_at,
                kind="webhook",
                title=f"Webhook {event.type}",
                detail=f"{event.attempts} attempts"
                + (f" · {event.last_error}" if event.last_error else ""),
                status="delivered" if event.delivered_at else "not delivered",
                event_id=event.id,
            )
        )
    notices = select(PartyNotification).where(PartyNotification.order_id == order_id)
    for notice in session.exec(notices.order_by(col(PartyNotification.created_at))).all():
        moments.append(
            Moment(
                at=notice.created_at,
                kind="notification",
                title=f"Notification to {notice.recipient}: {notice.event}",
                status="read" if notice.read_at else "",
            )
        )
    return moments


def in_order(moments: list[Moment]) -> list[Moment]:
    """Oldest first; SQLite's datetimes come without a zone, and are UTC."""
    return sorted(moments, key=lambda moment: _aware(moment.at))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
