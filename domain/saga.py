"""The messages of the order saga: workflow input, signals, updates, activity inputs, query view.

Each is one frozen model so fields can be added later without breaking the
histories of orders already running.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from domain.fx.terms import QuoteTerms
from domain.order_status import OrderStatus
from domain.polling import PollTimings
from domain.pricing import OrderLine, PricedOrder
from domain.split import Split


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


# The saga behaviour the API starts new orders with (OrderInput.saga_version). Orders of
# version 2 take, without a marker, every patch that came before it, and record their
# payment and settlement in one step; orders of version 3 also record the order and create
# its payment in one step, and record, settle, notify (and release) in one
# (workflows/order/versions.py).
SAGA_VERSION = 3
MERGED_STEPS = 3  # the first version whose steps are merged (one marker where two were)


class OrderInput(_Message):
    """Everything the saga needs, priced and validated by the API before the start."""

    order_id: str
    merchant_id: str
    # "" until the buyer chooses a method on our hosted checkout (MethodChoice).
    channel: str
    description: str = ""
    merchant_name: str = ""  # shown to the buyer at the channel's cashier
    return_url: str | None = None  # where the hosted checkout sends the buyer back
    # Our hosted checkout: where a channel's own page sends the buyer back after paying
    # (None in inputs made before it was carried).
    checkout_url: str | None = None
    buyer_ref: str | None = None
    buyer_id: str | None = None  # the signed-in buyer who placed it
    priced: PricedOrder
    coupon_code: str | None = None
    channel_fee_rate: Decimal
    commission_rate: Decimal
    payment_timeout_seconds: int
    notify_url: str
    # After payment, the merchant's share stays pending until the buyer confirms receipt
    # or this many seconds pass. None (orders started before the hold existed): no hold.
    auto_complete_seconds: int | None = None
    # 1 at the start; each modification closes the payment and issues the next attempt
    # under its own channel reference (domain.keys.payment_reference).
    payment_attempt: int = 1
    # The attempt's channel reference when it is not the order id; None in inputs made
    # before it was carried, whose later attempts used the "-" form (domain.keys).
    payment_reference: str | None = None
    polling: PollTimings = PollTimings()
    # 1 in inputs made before it was carried: such an order's history says which patches
    # it took. The API starts new orders with SAGA_VERSION.
    saga_version: int = 1
    # The buyer pays in another currency than the price: the locked quote (domain.fx);
    # None for an order paid in its price currency (and in inputs made before it existed).
    quote: QuoteTerms | None = None
    # The OrderStatus search attribute the starter set (the saga publishes only a change
    # from it); None, in inputs made before it was carried and by any other starter:
    # created.
    started_status: OrderStatus | None = None

    @property
    def opens_at_once(self) -> bool:
        """An order of version 3 or later with its channel and something to pay: recorded
        and its payment created in one step. The API starts it with the status that step
        makes true (awaiting payment, `started_status`), so the saga publishes no status
        before a change; any other order is started as created."""
        return (
            self.saga_version >= MERGED_STEPS
            and bool(self.channel)
            and self.priced.payable_amount > 0
        )

    @property
    def charge_amount(self) -> int:
        """What the channel is asked to collect: the quoted amount, else the payable."""
        return self.quote.presentment_amount if self.quote else self.priced.payable_amount

    @property
    def charge_currency(self) -> str:
        return self.quote.presentment_currency if self.quote else self.priced.currency


class Checkout(_Message):
    channel_payment_id: str
    checkout_url: str
    qr_payload: str | None = None


class PaymentSignal(_Message):
    """A channel's word on the payment, from a notification or from our own query."""

    source: str  # "notification:{id}" or "query"
    kind: str  # channels.base.NotificationKind value
    channel_txn_id: str | None = None
    amount: int
    currency: str
    merchant_id: str | None  # None: the channel's answer does not say (Alipay's query)
    refund_id: str | None = None
    # The payment attempt it is about; None: the first (signals from before modifications).
    attempt: int | None = None
    # A wallet that converted a foreign price (channels.base.CrossBorderFacts): the CNY
    # the buyer paid and the channel's rate; None otherwise and in signals from before.
    payer_amount: int | None = None
    payer_currency: str | None = None
    channel_rate: Decimal | None = None


class CancelRequest(_Message):
    reason: str = "requested"


class ReceiptConfirmation(_Message):
    """The buyer has the goods: the order may complete now."""


class CheckoutRequest(_Message):
    """The API's update after start: answer once the checkout exists or the order ended."""


class OrderRef(_Message):
    order_id: str
    channel: str
    # The channel's out_trade_no when it is not the order id (a re-issued payment).
    payment_reference: str | None = None


class ModifyRequest(_Message):
    """The API's update: the order's new lines (validated and priced by the API first)."""

    lines: tuple[OrderLine, ...]


class MethodChoice(_Message):
    """The buyer's choice of payment method on the hosted checkout (the API's update):
    the channel, with its fee rate and notification URL from the API's settings."""

    channel: str
    channel_fee_rate: Decimal
    notify_url: str


class MethodChosen(_Message):
    """The order's channel from now on, and the attempt that opens there."""

    order_id: str
    channel: str
    channel_fee_rate: Decimal
    payment_attempt: int


class Repricing(_Message):
    """Price new lines for an order, with its coupon checked again."""

    order_id: str
    lines: tuple[OrderLine, ...]


class OrderModification(_Message):
    """New lines and amounts for an unpaid order, and the payment attempt that will take them."""

    order_id: str
    priced: PricedOrder
    payment_attempt: int


class StatusChange(_Message):
    order_id: str
    status: OrderStatus
    reason: str | None = None


class PaymentRecord(_Message):
    order_id: str
    channel_txn_id: str | None
    amount: int
    currency: str
    # What a converting wallet reported (PaymentSignal's facts), kept with the payment.
    payer_amount: int | None = None
    payer_currency: str | None = None
    channel_rate: Decimal | None = None


class PaymentFulfilment(_Message):
    """The paid order's steps in one (orders of version 3): record the payment, settle it,
    notify the parties, and release the merchant's share unless a receipt hold keeps it."""

    record: PaymentRecord
    release: bool


class Fulfilled(_Message):
    """What the fulfilment step did: the split, the share released (None: held), and the
    notification's refusal if the parties could not be told (flagged for ops)."""

    split: Split
    released_amount: int | None = None
    notify_refusal: str | None = None


class ReviewFlag(_Message):
    order_id: str
    reason: str


class RefundOrder(_Message):
    refund_id: str
    order_id: str
    channel: str
    channel_txn_id: str | None
    amount: int
    currency: str
    reason: str
    payment_reference: str | None = None  # the payment's out_trade_no if not the order id


class SagaRefundInput(_Message):
    """A saga's own refund, waited for in a child workflow (workflows.saga_refund).

    `next_check_ms` is None on the first run, which asks the channel; a run continued
    as new carries its next interval and only checks the refund asked before.
    """

    refund: RefundOrder
    polling: PollTimings
    next_check_ms: int | None = None


class LatePayment(_Message):
    """A payment the channel took for an order that was no longer waiting for it."""

    order_id: str
    channel: str
    channel_txn_id: str
    amount: int
    currency: str
    payment_reference: str | None = None  # the payment's out_trade_no if not the order id


class OrderView(_Message):
    """The saga's own state, as its query handler reports it."""

    order_id: str
    status: OrderStatus
    steps_done: tuple[str, ...]
    payable_amount: int
    currency: str
    checkout: Checkout | None = None
    channel_txn_id: str | None = None
    split: Split | None = None
    close_reason: str | None = None
    review_reasons: tuple[str, ...] = ()
    refunded_amount: int = 0
    released_amount: int | None = None  # the merchant's share made available at completion
    payment_attempt: int = 1
