"""Between our models and WeChat Pay's wire models: pure, no I/O.

    trade_state   NOTPAY, USERPAYING -> PENDING      SUCCESS, REFUND -> PAID
                  CLOSED, REVOKED    -> CLOSED       PAYERROR        -> DECLINED
    refund        PROCESSING -> pending   SUCCESS -> succeeded
                  ABNORMAL, CLOSED -> failed (failure_reason: the status)

WeChat Pay keys an order by our out_trade_no, so the order id is also the
channel's payment id; the shop's merchant id travels in `attach`. Orders and refunds
state the price currency in `amount.currency`; when the buyer paid another
(`payer_currency`), the CNY and `exchange_rate` become our cross-border facts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from channels.base import (
    CreatePaymentRequest,
    PaymentState,
    PaymentStatus,
    RefundRequest,
    RefundState,
    RefundStatus,
)
from channels.wechatpay import wire

PAYMENT_STATUS: dict[wire.TradeState, PaymentStatus] = {
    "NOTPAY": PaymentStatus.PENDING,
    "USERPAYING": PaymentStatus.PENDING,
    "SUCCESS": PaymentStatus.PAID,
    "REFUND": PaymentStatus.PAID,  # paid, and a refund has been asked for since
    "CLOSED": PaymentStatus.CLOSED,
    "REVOKED": PaymentStatus.CLOSED,
    "PAYERROR": PaymentStatus.DECLINED,
}
REFUND_STATUS: dict[wire.RefundStatus, RefundStatus] = {
    "PROCESSING": RefundStatus.PENDING,
    "SUCCESS": RefundStatus.SUCCEEDED,
    "ABNORMAL": RefundStatus.FAILED,
    "CLOSED": RefundStatus.FAILED,
}


def native_order(request: CreatePaymentRequest, *, appid: str, mchid: str) -> wire.NativeOrder:
    # model_construct: WeChat Pay validates its own rules and answers 400 PARAM_ERROR.
    return wire.NativeOrder.model_construct(
        appid=appid,
        mchid=mchid,
        description=request.description,
        out_trade_no=request.order_id,
        notify_url=request.notify_url,
        attach=request.merchant_id,
        amount=wire.OrderAmount.model_construct(total=request.amount, currency=request.currency),
    )


def jsapi_order(
    request: CreatePaymentRequest, openid: str, *, appid: str, mchid: str
) -> wire.JsapiOrder:
    native = native_order(request, appid=appid, mchid=mchid)
    return wire.JsapiOrder.model_construct(
        **dict(native), payer=wire.Payer.model_construct(openid=openid)
    )


def refund_order(request: RefundRequest, total: int) -> wire.RefundOrder:
    """No notify_url: WeChat Pay then uses the one configured for the merchant."""
    # The reason is only shown to the buyer: a long one is cut, never a cause to fail.
    reason = request.reason[: wire.REFUND_REASON_MAX] or None
    return wire.RefundOrder.model_construct(
        out_trade_no=request.order_id,
        out_refund_no=request.refund_id,
        reason=reason,
        notify_url=None,
        amount=wire.RefundOrderAmount.model_construct(
            refund=request.amount, total=total, currency=request.currency
        ),
    )


def payment_state(transaction: wire.Transaction) -> PaymentState:
    return PaymentState(
        order_id=transaction.out_trade_no,
        channel_payment_id=transaction.out_trade_no,
        status=PAYMENT_STATUS[transaction.trade_state],
        amount=transaction.amount.total,
        currency=transaction.amount.currency,
        merchant_id=transaction.attach or None,
        channel_txn_id=transaction.transaction_id,
        **payer_facts(
            transaction.amount.currency,
            transaction.amount.payer_total,
            transaction.amount.payer_currency,
            transaction.amount.exchange_rate,
        ),
    )


def refund_state(refund: wire.Refund) -> RefundState:
    status = REFUND_STATUS[refund.status]
    return RefundState(
        refund_id=refund.out_refund_no,
        order_id=refund.out_trade_no,
        status=status,
        amount=refund.amount.refund,
        currency=refund.amount.currency,
        failure_reason=refund.status if status is RefundStatus.FAILED else None,
        **refund_facts(refund.amount),
    )


def refund_facts(amount: wire.RefundAmount) -> dict[str, Any]:
    """The CNY a cross-border refund gave back, and WeChat Pay's rate of that day."""
    return payer_facts(
        amount.currency, amount.payer_refund, amount.payer_currency, amount.exchange_rate
    )


def payer_facts(
    currency: str,
    payer_amount: int | None,
    payer_currency: str | None,
    exchange_rate: wire.ExchangeRate | None,
) -> dict[str, Any]:
    """Our cross-border facts when the buyer paid another currency than the price's;
    empty when they paid the price currency (every domestic order)."""
    if payer_currency in (None, currency) or payer_amount is None or exchange_rate is None:
        return {}
    return {
        "payer_amount": payer_amount,
        "payer_currency": payer_currency,
        "channel_rate": channel_rate(exchange_rate),
    }


def channel_rate(exchange_rate: wire.ExchangeRate) -> Decimal:
    """`rate / 10^8` exactly: 92463712 -> Decimal("0.92463712")."""
    return Decimal(exchange_rate.rate).scaleb(-8)
