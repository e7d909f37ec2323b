"""Business keys: every id and idempotency key is derived here, from the order id.

Deriving keys from the business key (never from randomness) is what makes a
retried step find the side effect of its earlier attempt instead of repeating it.
"""

from __future__ import annotations

import hashlib
from datetime import date

ORDER_WORKFLOW_PREFIX = "order-"


def order_workflow_id(order_id: str) -> str:
    return f"{ORDER_WORKFLOW_PREFIX}{order_id}"


def late_payment_workflow_id(channel: str, channel_txn_id: str) -> str:
    return f"late-payment-{channel}-{channel_txn_id}"


# A modification closes the pending payment and issues a new one; a channel never
# re-opens a closed out_trade_no, so each attempt has its own: "{order id}__{attempt}",
# letters, digits and "_" only, as Alipay documents an out_trade_no (up to 64; WeChat
# Pay takes 6-32 of letters, digits and _-|*; the card gateway keeps it as metadata).
# With order ids of 28 characters, "__99" keeps every reference within WeChat Pay's 32.
MAX_PAYMENT_ATTEMPTS = 99
ATTEMPT_SEPARATOR = "__"
# Attempts issued before were "{order id}-{attempt}"; the channels know them by that
# name for good, so such an attempt is still asked about by it (`legacy=True`).
LEGACY_ATTEMPT_SEPARATOR = "-"


def payment_reference(order_id: str, attempt: int = 1, *, legacy: bool = False) -> str:
    """The channel's out_trade_no for the order's `attempt`-th payment.

    The first is the bare order id, so orders that were never modified (and their
    histories) keep the reference they always had. Order ids are "ord_" and hex:
    they never contain "__" or "-".
    """
    if not 1 <= attempt <= MAX_PAYMENT_ATTEMPTS:
        raise ValueError(f"payment attempt {attempt} is outside 1..{MAX_PAYMENT_ATTEMPTS}")
    if attempt == 1:
        return order_id
    separator = LEGACY_ATTEMPT_SEPARATOR if legacy else ATTEMPT_SEPARATOR
    return f"{order_id}{separator}{attempt}"


def split_payment_reference(reference: str) -> tuple[str, int]:
    """(order id, attempt) of a channel reference made by `payment_reference`, either form."""
    for separator in (ATTEMPT_SEPARATOR, LEGACY_ATTEMPT_SEPARATOR):
        order_id, found, suffix = reference.rpartition(separator)
        if found and order_id and suffix.isascii() and suffix.isdigit() and suffix[0] != "0":
            attempt = int(suffix)
            if 2 <= attempt <= MAX_PAYMENT_ATTEMPTS:
                return order_id, attempt
    return reference, 1


def order_id_of(reference: str) -> str:
    """The order a channel reference (an out_trade_no) belongs to."""
    return split_payment_reference(reference)[0]


def stored_payment_reference(order_id: str, attempt: int, channel_payment_id: str | None) -> str:
    """The reference an attempt was issued under, read from its stored row: Alipay and
    WeChat Pay store it as the channel's payment id, in whichever form it was made."""
    current = payment_reference(order_id, attempt)
    if channel_payment_id in (current, payment_reference(order_id, attempt, legacy=True)):
        assert channel_payment_id is not None
        return channel_payment_id
    return current


def compensation_refund_id(order_id: str, attempt: int = 1) -> str:
    """The refund that gives the buyer's money back when the saga fails after payment.

    A channel keeps a refused refund under its id, so each retry that ops ask
    for after a refusal is a new attempt with its own id.
    """
    return f"{order_id}-compensation" if attempt == 1 else f"{order_id}-compensation-{attempt}"


def late_payment_refund_id(order_id: str, channel_txn_id: str) -> str:
    """The refund of a payment that arrived after the order was closed or already paid."""
    return f"{order_id}-late-{channel_txn_id}"


def saga_refund_workflow_id(refund_id: str) -> str:
    """The child that asks for and awaits a saga's own refund (workflows.saga_refund)."""
    return f"saga-refund-{refund_id}"


def deletion_refund_id(order_id: str, requester: str) -> str:
    """The full refund of a paid order deleted by `requester` (buyer, merchant, operator):
    one per requester however often they delete it. Per requester, because the refund rules
    differ by who asks: a buyer refused (past their window) must not block an operator's.
    Two requesters' deletions cannot both refund in full: the second finds nothing left."""
    return f"{order_id}-deletion-{requester}"


def settlement_entry_id(order_id: str) -> str:
    return f"{order_id}:settlement"


def reversal_entry_id(entry_id: str) -> str:
    return f"{entry_id}:reversal"


def funds_release_entry_id(order_id: str) -> str:
    return f"{order_id}:release"


def refund_workflow_id(refund_id: str) -> str:
    return f"refund-{refund_id}"


def refund_reservation_entry_id(refund_id: str) -> str:
    return f"{refund_id}:reserve"


def refund_completion_entry_id(refund_id: str) -> str:
    return f"{refund_id}:complete"


def refund_return_entry_id(refund_id: str) -> str:
    return f"{refund_id}:return"


def webhook_event_id(order_id: str, event_type: str, refund_id: str | None = None) -> str:
    """A merchant event's id: the same on every delivery, so merchants can dedupe by it."""
    key = f"{order_id}:{event_type}"
    if refund_id is not None:
        key = f"{key}:{refund_id}"
    return f"evt_{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def webhook_workflow_id(event_id: str) -> str:
    return f"webhook-{event_id}"


def statement_id(merchant_id: str, day: date, currency: str) -> str:
    return f"{merchant_id}:{day.isoformat()}:{currency}"


def statement_merchant(statement: str) -> str:
    """The merchant of a statement id (a merchant id has no ':', as an account's owner)."""
    return statement.rsplit(":", 2)[0]


def payout_id(statement: str) -> str:
    """The bank's idempotency key for a statement's payout: one payout per statement."""
    return f"po-{statement.replace(':', '-')}"


def payout_entry_id(payout: str, step: str) -> str:
    return f"{payout}:{step}"


def settlement_run_workflow_id(day: date, merchant_ids: tuple[str, ...] = ()) -> str:
    """One run per day; a run for some merchants only is its own run, named by them."""
    if not merchant_ids:
        return f"settlement-run-{day.isoformat()}"
    digest = hashlib.sha256("\n".join(sorted(merchant_ids)).encode()).hexdigest()[:12]
    return f"settlement-run-{day.isoformat()}-{digest}"


def unanswered_payouts_run_id(looking_back: str, day: date) -> str:
    """A day run again for its unanswered payouts by the run `looking_back` (its workflow
    id): named after that run, which the Schedule names after its stack and time, so that
    no other stack's run on the same Temporal server, nor an operator's run of the day
    (which makes statements), holds its id. (Not the task queue: a replay has its own.)"""
    return f"{looking_back}-unanswered-{day.isoformat()}"


def merchant_settlement_workflow_id(merchant_id: str, day: date) -> str:
    return f"settlement-{day.isoformat()}-{merchant_id}"


def late_payment_received_entry_id(refund_id: str) -> str:
    """The entry that books a late payment (keyed by the refund that gives it back)."""
    return f"{refund_id}:late-received"


def late_payment_refunded_entry_id(refund_id: str) -> str:
    return f"{refund_id}:late-refunded"


def compensation_entry_id(order_id: str) -> str:
    """The entry that moves a compensated order's money into refunds in flight: one per
    order, however many refund attempts ops ask for after a refusal."""
    return f"{order_id}:compensation"


def channel_sweep_workflow_id(channel: str, day: date) -> str:
    return f"channel-sweep-{channel}-{day.isoformat()}"


def channel_sweep_entry_id(transfer_id: str) -> str:
    """The sweep's entry, keyed by the bank's id of the channel's transfer."""
    return f"{transfer_id}:swept"
