"""After payment: record it, settle (split + ledger), notify buyer and merchant, hold the
merchant's share until the buyer confirms receipt (or the delay passes), release it.

A step refused for a business reason is compensated (compensation.py); a payment that
reaches the order during the hold is given back at once (refunds.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow

from workflows.order.failures import ended_as, failure_type
from workflows.order.payment_wait import PaymentWait
from workflows.order.versions import patched_or_v2, since_v2, since_v3

with workflow.unsafe.imports_passed_through():
    from activities.order_records import OrderRecords
    from activities.payment_settlement import PaymentSettlement
    from domain.failures import ORDER_ENDED
    from domain.order_status import OrderStatus
    from domain.saga import Fulfilled, PaymentFulfilment, PaymentRecord, PaymentSignal
    from workflows import options


class Fulfilment(PaymentWait):
    async def _fulfil(self) -> None:
        """Record, settle, notify; a step refused for a business reason is compensated."""
        assert self._paid is not None
        paid = self._paid
        record = PaymentRecord(
            order_id=self._order.order_id,
            channel_txn_id=paid.channel_txn_id,
            amount=paid.amount,
            currency=paid.currency,
            payer_amount=paid.payer_amount,
            payer_currency=paid.payer_currency,
            channel_rate=paid.channel_rate,
        )
        # Orders from before: the reversal was registered after record_payment, any failure
        # (a bug too) compensated, and a failed notification compensated the paid order.
        ordered = patched_or_v2("compensate-business-refusals-only", self._order)
        try:
            if paid.amount > 0:
                self._compensations.append(self._refund_buyer)
            if ordered:  # record_payment posts the settlement entry: reversed even if the
                self._compensations.append(self._reverse_settlement)  # step fails after it
            fulfilled: Fulfilled | None = None
            if since_v3(self._order):
                fulfilled = await self._fulfil_in_one_step(record)
            elif since_v2(self._order):
                await self._record_and_settle(record)
            else:
                await self._record_then_settle(record, ordered)
        except options.StepFailed as error:
            if failure_type(error) == ORDER_ENDED:
                await self._end_as_recorded(paid, error)
                return
            if ordered and options.business_failure(error) is None:
                raise options.UnclassifiedFailure(f"{error.cause or error}") from error
            await self._compensate(str(error.cause or error))
            return
        if fulfilled is not None:
            await self._after_fulfilled(fulfilled)
        elif since_v2(self._order) and not self._order.auto_complete_seconds:
            await self._notify_and_release()
        else:
            if ordered:
                await self._notify_parties()
            if patched_or_v2("hold-funds-until-receipt", self._order):
                await self._hold_until_receipt()
        self._status = OrderStatus.COMPLETED  # release_funds wrote the projection
        self._publish(self._status)

    async def _end_as_recorded(self, paid: PaymentSignal, refusal: BaseException) -> None:
        """The order's record had already ended unpaid when this payment came to be taken
        (OrderEnded, nothing written): a try of the step that ended it wrote that and told
        the parties, then its workflow task was lost and this replay, seeing a payment
        that try had not, took it. What was told stands: the order ends as its record
        says, and the payment goes back as a late one."""
        status, reason = ended_as(refusal)
        self._paid = None
        self._compensations.clear()  # nothing was recorded
        self._close_reason = reason
        self._status = OrderStatus(status)
        self._publish(self._status)
        await self._give_back(paid)

    async def _record_then_settle(self, record: PaymentRecord, ordered: bool) -> None:
        """Orders of version 1: the payment, then its settlement, each a step (and, for
        those from before business refusals, the notification compensated too)."""
        await self._db(OrderRecords.record_payment, record)
        self._steps.append("record_payment")
        self._status = OrderStatus.PAID
        if not ordered:
            self._compensations.append(self._reverse_settlement)
        self._split = await self._db(OrderRecords.settle_order, self._ref)
        self._steps.append("settle")
        self._status = OrderStatus.SETTLED
        if not ordered:
            await self._db(OrderRecords.notify_parties, self._ref)
            self._steps.append("notify")

    async def _record_and_settle(self, record: PaymentRecord) -> None:
        """Orders of version 2: the payment and its settlement in one step (one history
        event); the only refusal (merchant_suspended) comes once the payment is recorded."""
        try:
            self._split = await self._db(PaymentSettlement.record_and_settle, record)
        except options.StepFailed as error:
            if options.business_failure(error) is not None:
                self._steps.append("record_payment")
            raise
        self._steps.extend(("record_payment", "settle"))
        self._status = OrderStatus.SETTLED

    async def _fulfil_in_one_step(self, record: PaymentRecord) -> Fulfilled:
        """Orders of version 3: the payment recorded and settled, the parties told, and
        (without a receipt hold) the merchant's share released, in one step (one history
        event). Only the settlement's refusal (merchant_suspended) fails it, once the
        payment is recorded; past it the step retries whatever fails."""
        release = not self._order.auto_complete_seconds
        fulfilment = PaymentFulfilment(record=record, release=release)
        try:
            fulfilled = await self._db(PaymentSettlement.fulfil_payment, fulfilment)
        except options.StepFailed as error:
            if options.business_failure(error) is not None:
                self._steps.append("record_payment")
            raise
        self._split = fulfilled.split
        self._steps.extend(("record_payment", "settle"))
        self._status = OrderStatus.SETTLED
        return fulfilled

    async def _after_fulfilled(self, fulfilled: Fulfilled) -> None:
        """Orders of version 3: a refused notification flagged for ops (never a reason to
        give the money back), then the share's release, done or held until receipt."""
        if fulfilled.notify_refusal is not None:
            reason = f"notifying the parties failed: {fulfilled.notify_refusal}"
            await self._flag_for_review(reason)
        else:
            self._steps.append("notify")
        if fulfilled.released_amount is None:  # the receipt hold keeps the share
            await self._hold_until_receipt()
            return
        self._released_amount = fulfilled.released_amount
        self._steps.append("release_funds")

    async def _notify_and_release(self) -> None:
        """Orders of version 2 completed at payment (no receipt hold): notify the parties
        and release the merchant's share in one step. A refused notification is never a
        reason to give the money back: it is flagged for ops, and the release done alone."""
        try:
            self._released_amount = await workflow.execute_local_activity_method(
                PaymentSettlement.notify_and_release, self._ref, **options.DB_MUST_FINISH
            )
        except options.StepFailed as error:
            await self._flag_for_review(f"notifying the parties failed: {error.cause or error}")
            await self._release_funds()
            return
        self._steps.extend(("notify", "release_funds"))

    async def _notify_parties(self) -> None:
        """Tell the buyer and the merchant: retried until written, and never a reason to
        give a paid order's money back (a refusal is flagged for ops)."""
        try:
            await workflow.execute_local_activity_method(
                OrderRecords.notify_parties, self._ref, **options.DB_MUST_FINISH
            )
        except options.StepFailed as error:
            await self._flag_for_review(f"notifying the parties failed: {error.cause or error}")
            return
        self._steps.append("notify")

    async def _hold_until_receipt(self) -> None:
        """The merchant's share stays pending until the buyer confirms or the delay passes.

        Past payment there is no compensation: refunds are their own workflows, and the
        release is a database write retried until it succeeds.
        """
        self._status = OrderStatus.AWAITING_RECEIPT  # notify_parties wrote the projection
        delay = self._order.auto_complete_seconds or 0
        if delay > 0:
            self._drop_poll_timer()
            self._publish(self._status)
            if patched_or_v2("refund-late-payments-during-hold", self._order):
                await self._await_receipt(workflow.now() + timedelta(seconds=delay))
            else:  # orders from before gave late payments back only once completed
                with contextlib.suppress(TimeoutError):  # the delay passed: auto-completion
                    await workflow.wait_condition(
                        lambda: self._receipt_confirmed, timeout=timedelta(seconds=delay)
                    )
        await self._release_funds()

    async def _release_funds(self) -> None:
        self._released_amount = await workflow.execute_local_activity_method(
            OrderRecords.release_funds, self._ref, **options.DB_MUST_FINISH
        )
        self._steps.append("release_funds")

    async def _await_receipt(self, deadline: datetime) -> None:
        """Until the buyer confirms or the hold ends; a payment that reaches the order
        meanwhile (a second one, or one of a replaced attempt) is given back at once."""
        if since_v2(self._order):
            await self._await_receipt_or_hold_end(deadline - workflow.now())
            return
        while not self._receipt_confirmed:
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                return  # the delay passed: auto-completion
            try:
                await workflow.wait_condition(
                    lambda: self._receipt_confirmed or bool(self._inbox), timeout=remaining
                )
            except TimeoutError:
                return
            await self._refund_inbox()

    async def _await_receipt_or_hold_end(self, hold: timedelta) -> None:
        """Orders of version 2: the hold's timer is left running when the buyer confirms,
        and the order completes in that same task: no TIMER_CANCELED event."""
        ended = asyncio.create_task(workflow.sleep(hold))
        while not self._receipt_confirmed and not ended.done():
            await workflow.wait_condition(
                lambda: self._receipt_confirmed or bool(self._inbox) or ended.done()
            )
            await self._refund_inbox()
