"""The failures the sagas act on, by name: shared by the activities that report them,
the workflows that act on them and the API that answers them (as Temporal application
error types; `activities.errors` makes the errors themselves).

    ApplicationError (temporalio)
    ├── CouponRejected        the coupon was taken meanwhile, or no longer applies to an
    │                         order's new lines; details: (code, param)  (not retryable)
    ├── OrderInvalid          new lines that cannot be priced; details: (code, param)
    │                                                                   (not retryable)
    ├── MerchantSuspended     settlement refused: the merchant is suspended (not retryable)
    ├── ChannelRejected       the channel refused the request for good  (not retryable)
    ├── PaymentNotFound       the channel has no payment for the order  (not retryable)
    ├── RefundRefused         the channel refused a refund              (not retryable)
    ├── RefundPending         the channel has not finished a refund     (retryable: polls)
    ├── RefundRejected        our rules refuse a refund; details: (code, param) (not retryable)
    ├── InsufficientFunds     the ledger refuses to take an account below zero: the class
    │                         name of db.ledger.InsufficientFunds, which the SDK reports as
    │                         the failure's type                        (not retryable)
    ├── ChannelUnavailable    network, timeout or 5xx at the channel    (retryable)
    ├── WebhookNotAcknowledged  the merchant's endpoint did not answer 2xx (retryable: backoff)
    ├── WebhookUndeliverable  no such event, or the merchant has no signing secret (not retryable)
    ├── OrderEnded            a payment taken for an order whose record already ended
    │                         unpaid (closed, cancelled): it is late; details: (status,
    │                         close_reason)                             (not retryable)
    ├── OrderGivenBack        a payment taken for an order the saga has given its payment
    │                         back (refunding, refunded, compensation_failed): a stale try;
    │                         nothing written; details: (status,)       (not retryable)
    ├── OrderNotModifiable    the saga refuses a modification: the order is paid, closed,
    │                         cancelled, or its payment could not be closed (an update's
    │                         failure, not an activity's)
    └── ModificationFailed    a modification that could not be completed for a reason
                              retrying later may mend (an update's failure)

The saga catches the non-retryable ones by type; everything else is retried:
a failure of any other type (a bug, an unreachable database) is never a reason
to compensate a paid order, so a step waits for the fix instead.
"""

from __future__ import annotations

COUPON_REJECTED = "CouponRejected"
MERCHANT_SUSPENDED = "MerchantSuspended"
CHANNEL_REJECTED = "ChannelRejected"
PAYMENT_NOT_FOUND = "PaymentNotFound"
REFUND_REFUSED = "RefundRefused"
REFUND_PENDING = "RefundPending"
REFUND_REJECTED = "RefundRejected"
CHANNEL_UNAVAILABLE = "ChannelUnavailable"
WEBHOOK_NOT_ACKNOWLEDGED = "WebhookNotAcknowledged"
WEBHOOK_UNDELIVERABLE = "WebhookUndeliverable"
ORDER_INVALID = "OrderInvalid"
ORDER_ENDED = "OrderEnded"
ORDER_GIVEN_BACK = "OrderGivenBack"
ORDER_NOT_MODIFIABLE = "OrderNotModifiable"
MODIFICATION_FAILED = "ModificationFailed"
INSUFFICIENT_FUNDS = "InsufficientFunds"  # db.ledger.InsufficientFunds.__name__

# The refusals an activity reports for good: the only failures a saga acts on (it
# compensates, rejects or flags); retrying cannot change their answer. (OrderEnded is
# not among them: nothing was recorded, and the saga gives the payment back as late.
# OrderGivenBack is: the saga compensates, again and idempotently, as it had begun to.)
BUSINESS_ERRORS = frozenset(
    {
        COUPON_REJECTED,
        MERCHANT_SUSPENDED,
        CHANNEL_REJECTED,
        PAYMENT_NOT_FOUND,
        REFUND_REFUSED,
        REFUND_REJECTED,
        WEBHOOK_UNDELIVERABLE,
        ORDER_INVALID,
        INSUFFICIENT_FUNDS,
        ORDER_GIVEN_BACK,
    }
)
