"""Building the notification events the sandbox sends.

An event is built once, with its id, and then delivered (and perhaps
re-delivered) unchanged: the id is what lets a receiver drop duplicates.
"""

from __future__ import annotations

import time

from sandbox.protocol import (
    Event,
    EventData,
    EventType,
    Payout,
    PayoutEvent,
    PayoutEventType,
)
from sandbox.store import PaymentRecord, RefundRecord, new_id


def payment_event(type_: EventType, payment: PaymentRecord) -> Event:
    return _event(
        type_,
        EventData(
            payment_id=payment.payment_id,
            out_trade_no=payment.out_trade_no,
            merchant_id=payment.merchant_id,
            amount=payment.amount,
            currency=payment.currency,
            txn_id=payment.txn_id,
            status=payment.status,
            payer_amount=payment.payer_amount,
            payer_currency=payment.payer_currency,
            channel_rate=payment.channel_rate,
        ),
    )


def refund_event(type_: EventType, payment: PaymentRecord, refund: RefundRecord) -> Event:
    """A refund event carries the refund's amount, currency and status."""
    return _event(
        type_,
        EventData(
            payment_id=payment.payment_id,
            out_trade_no=payment.out_trade_no,
            merchant_id=payment.merchant_id,
            amount=refund.amount,
            currency=refund.currency,
            txn_id=payment.txn_id,
            status=refund.status,
            refund_id=refund.refund_id,
            payment_amount=payment.amount,
            payer_amount=refund.payer_amount,
            payer_currency=refund.payer_currency,
            channel_rate=refund.channel_rate,
            payment_payer_amount=payment.payer_amount,
        ),
    )


def payout_event(type_: PayoutEventType, payout: Payout) -> PayoutEvent:
    """A payout event carries the payout as the API shows it, so a receiver
    reads one model whether it queried or was told."""
    return PayoutEvent(id=new_id("evt"), type=type_, created=int(time.time()), data=payout)


def _event(type_: EventType, data: EventData) -> Event:
    return Event(id=new_id("evt"), type=type_, created=int(time.time()), data=data)
