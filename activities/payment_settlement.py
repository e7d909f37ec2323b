"""The order saga's steps after payment, several at a time: one local activity (one history
event, `MARKER_RECORDED`) where the saga ran two or four.

`record_and_settle` and `notify_and_release` (orders of version 2) run OrderRecords' own
steps one after the other, in their own transactions, as the saga ran them: each is
idempotent by order id, so a retry of the whole redoes nothing an earlier attempt
committed. `fulfil_payment` (version 3) runs the four steps' writes in two transactions:
each took SQLite's write lock and the order's row lock, and only the payment's must
commit before anything can refuse.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import INSUFFICIENT_FUNDS, retryable_error
from activities.order_records import OrderRecords
from domain.saga import Fulfilled, OrderRef, PaymentFulfilment, PaymentRecord
from domain.split import Split

# Past the payment's settlement nothing is compensated: what fails there is retried.
_PAST_SETTLEMENT = "FulfilmentRetried"


class PaymentSettlement:
    """The pairs; receives the saga's OrderRecords (wired by worker.py)."""

    def __init__(self, records: OrderRecords) -> None:
        self._records = records

    @activity.defn
    def record_and_settle(self, record: PaymentRecord) -> Split:
        """Record the payment and its settlement entry, then take the split; refused
        (merchant_suspended) after the payment is recorded, as settle_order is."""
        self._records.record_payment(record)
        ref = OrderRef(order_id=record.order_id, channel="")  # settle_order reads the id only
        return self._records.settle_order(ref)

    @activity.defn
    def notify_and_release(self, ref: OrderRef) -> int:
        """An order completed at payment (no receipt hold): tell the buyer and the
        merchant, then make the merchant's share available; returns the amount."""
        self._records.notify_parties(ref)
        return self._records.release_funds(ref)

    @activity.defn
    def fulfil_payment(self, fulfilment: PaymentFulfilment) -> Fulfilled:
        """Orders of version 3: record and settle the payment, tell the parties, and
        release the merchant's share unless the receipt hold keeps it.

        Only the settlement's refusal (merchant_suspended) fails the step, and the saga
        compensates, as for `record_and_settle`. Past it nothing is given back: a refused
        notification is returned (the saga flags it for ops) and the release done alone;
        any other failure is retried, as the saga retries its separate steps there.
        """
        # One transaction: the payment and its settlement; a suspended merchant's refusal
        # comes once it is committed, so the saga gives back a payment the record shows.
        split = self._records.record_and_settle_payment(fulfilment.record)
        ref = OrderRef(order_id=fulfilment.record.order_id, channel="")
        try:
            refusal, released = self._notify_and_release(ref, fulfilment.release)
        except Exception as error:
            if _retried_anyway(error):
                raise
            raise retryable_error(_PAST_SETTLEMENT, f"{type(error).__name__}: {error}") from error
        return Fulfilled(split=split, released_amount=released, notify_refusal=refusal)

    def _notify_and_release(self, ref: OrderRef, release: bool) -> tuple[str | None, int | None]:
        """The notices and the release in one transaction; the notices' refusal for good,
        if any, and the amount released (None: held).

        Refused for good (a non-retryable ApplicationError, or the ledger's
        InsufficientFunds from the release), the steps run again one at a time (each
        idempotent, so nothing the transaction may have committed is written twice), as
        they ran before: a refusal of the notices is then told from one of the release
        (retried), and the notices stand whatever becomes of the release.
        """
        try:
            return None, self._records.notify_and_release(ref, release)
        except Exception as error:
            if _retried_anyway(error):
                raise
        refusal = self._notify(ref)
        return refusal, self._records.release_funds(ref) if release else None

    def _notify(self, ref: OrderRef) -> str | None:
        """Tell the parties; their refusal for good, if any (never a reason to give the
        money back)."""
        try:
            self._records.notify_parties(ref)
        except ApplicationError as error:
            if not error.non_retryable:
                raise
            return error.message
        return None


def _retried_anyway(error: Exception) -> bool:
    """Whether the step's retry policy retries this failure as it is: everything but a
    non-retryable ApplicationError and the ledger's InsufficientFunds (DB_WRITE's)."""
    if isinstance(error, ApplicationError):
        return not error.non_retryable
    return type(error).__name__ != INSUFFICIENT_FUNDS
