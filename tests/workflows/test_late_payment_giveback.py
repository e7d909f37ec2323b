"""The one refund that gives a late payment back, shared by the order saga (while it
runs) and LatePaymentRefundWorkflow (once it has ended)."""

from __future__ import annotations

from domain.keys import late_payment_refund_id
from domain.saga import LatePayment
from workflows.late_payment import late_payment_refund


def test_a_late_payment_is_refunded_in_full_under_its_transactions_key() -> None:
    late = LatePayment(
        order_id="ord_1",
        channel="wechatpay",
        channel_txn_id="wx_9",
        amount=5997,
        currency="CNY",
        payment_reference="ord_1__2",
    )
    refund = late_payment_refund(late)
    assert refund.refund_id == late_payment_refund_id("ord_1", "wx_9")
    assert (refund.order_id, refund.channel, refund.channel_txn_id) == (
        "ord_1",
        "wechatpay",
        "wx_9",
    )
    assert (refund.amount, refund.currency, refund.reason) == (5997, "CNY", "late_payment")
    assert refund.payment_reference == "ord_1__2"
