"""Changes to what the buyer is asked to pay, while the saga waits for the buyer.

A modification (update modify_order) re-prices the order, closes its payment at the
channel and issues the next attempt under its own reference. The buyer's choice of
method on the hosted checkout (update choose_method) opens the payment at that
channel; switching closes the attempt open at the other one first. The payment wait
applies them between signals, so a change never interleaves with a payment; whether
one is taken at all is domain.modifiability's decision.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.order.compensation import Compensation
from workflows.order.failures import (
    failure_type,
    refusal_error,
    refused,
    repricing_refusal,
)
from workflows.order.state import signal_from_state
from workflows.order.versions import patched_or_v2

with workflow.unsafe.imports_passed_through():
    from activities.channel_calls import ChannelCalls
    from activities.order_records import OrderRecords
    from channels.base import (
        ChannelName,
        CloseResult,
        PaymentStatus,
        supports_currency,
        takes_order,
    )
    from domain.failures import (
        CHANNEL_REJECTED,
        MODIFICATION_FAILED,
        ORDER_INVALID,
        PAYMENT_NOT_FOUND,
    )
    from domain.keys import payment_reference
    from domain.modifiability import (
        NO_LONGER_AWAITS_PAYMENT,
        choice_refusal,
        modification_refusal,
    )
    from domain.payment_outcome import WaitEnd
    from domain.pricing import PricedOrder
    from domain.saga import MethodChoice, MethodChosen, ModifyRequest, OrderModification, Repricing
    from workflows import options
    from workflows.search_attributes import PAYMENT_CHANNEL

# Re-issued attempts are named "{order id}__{n}" (Alipay takes letters, digits, "_").
UNDERSCORE_REFERENCES = "payment-reference-underscore"

# A change's result: how it ended the wait (None: keep waiting), and its update's refusal.
Applied = tuple[WaitEnd | None, ApplicationError | None]


class Modifications(Compensation):
    def _check_modifiable(self) -> None:
        refusal = modification_refusal(self._standing())
        if refusal is not None:
            raise refusal_error(refusal)

    def _check_choosable(self, request: MethodChoice, *, validating: bool) -> None:
        known = request.channel in {name.value for name in ChannelName}
        price_currency = self._order.priced.currency
        quote = self._order.quote
        presentment = quote.presentment_currency if quote is not None else None
        if validating:
            # A quoted order's buyer pays the quote's currency: the channel must collect
            # that. Checked when a choice is asked (a refused one never enters the history)...
            currency = presentment or price_currency
            takes = known and takes_order(ChannelName(request.channel), price_currency, presentment)
        else:
            # ...and, when it is applied, by the rule choices already in histories were
            # accepted by (the price's currency), so they replay as they ran.
            currency = price_currency
            takes = known and supports_currency(ChannelName(request.channel), currency)
        refusal = choice_refusal(
            self._standing(), request.channel, currency, known=known, takes_currency=takes
        )
        if refusal is not None:
            raise refusal_error(refusal)

    def _stop_modifications(self) -> None:
        """The buyer paid or the order is ending: a change not yet applied is refused."""
        self._awaiting_payment = False
        if self._choice is not None:
            ticket, _ = self._choice
            self._choice = None
            self._choice_answers[ticket] = refusal_error(NO_LONGER_AWAITS_PAYMENT)
        if self._modification is not None:
            ticket, _ = self._modification
            self._modification = None
            self._modification_answers[ticket] = refusal_error(NO_LONGER_AWAITS_PAYMENT)

    async def _apply_change(self) -> WaitEnd | None:
        """Apply the buyer's waiting choice of method, else the waiting modification, and
        answer its update: PAID when closing the open attempt found it paid,
        CHANNEL_FAILED when the channel would not take the new payment, None to keep
        waiting for the buyer."""
        if self._choice is not None:
            ticket, choice = self._choice
            outcome, refusal = await self._open_at(choice)
            self._choice = None
            self._choice_answers[ticket] = refusal
            return outcome
        assert self._modification is not None
        ticket, request = self._modification
        outcome, refusal = await self._modify(request)
        self._modification = None
        self._modification_answers[ticket] = refusal
        return outcome

    async def _modify(self, request: ModifyRequest) -> Applied:
        """Re-price (coupon checked again), close the pending payment, record the new lines,
        issue the next attempt. Until the close succeeds, a refusal changes nothing."""
        repricing = Repricing(order_id=self._order.order_id, lines=request.lines)
        try:
            # A regular activity, not a local one: scheduling it ends the workflow task, so
            # the update is durably accepted before anything changes at the channel, and a
            # failed task later replays these steps instead of losing the update.
            priced: PricedOrder = await workflow.execute_activity_method(
                OrderRecords.reprice_order, repricing, **options.DB_WRITE
            )
        except options.StepFailed as error:
            return None, repricing_refusal(error)
        if priced.payable_amount == 0:
            message = "nothing would be left to pay; cancel the order instead"
            return None, refused(message, ORDER_INVALID, "payable_zero", "lines")
        closing = await self._close_for_change()
        if closing is not None:
            return closing
        attempt = self._order.payment_attempt + 1
        change = OrderModification(
            order_id=self._order.order_id, priced=priced, payment_attempt=attempt
        )
        await workflow.execute_local_activity_method(
            OrderRecords.record_modification, change, **options.DB_MUST_FINISH
        )
        self._steps.append("record_modification")
        self._replaced_attempts[self._order.payment_attempt] = self._order
        # Orders that issued an attempt before the "__" form keep the "-" one: the
        # channel knows their attempts by it (the answer is the same for the whole order).
        legacy = not patched_or_v2(UNDERSCORE_REFERENCES, self._order)
        reference = payment_reference(self._order.order_id, attempt, legacy=legacy)
        self._order = self._order.model_copy(
            update={"priced": priced, "payment_attempt": attempt, "payment_reference": reference}
        )
        return await self._open_attempt("the channel did not take the new payment")

    async def _open_at(self, request: MethodChoice) -> Applied:
        """Close the attempt open at another channel (if any), record the choice, open the
        next attempt at the chosen channel. Until the close succeeds, nothing changes."""
        if request.channel == self._order.channel:
            return None, None  # already open there: the same checkout
        attempt = self._order.payment_attempt
        if self._order.channel:
            closing = await self._close_for_change()
            if closing is not None:
                return closing
            self._replaced_attempts[attempt] = self._order
            attempt += 1
        chosen = MethodChosen(
            order_id=self._order.order_id,
            channel=request.channel,
            channel_fee_rate=request.channel_fee_rate,
            payment_attempt=attempt,
        )
        await workflow.execute_local_activity_method(
            OrderRecords.record_method_choice, chosen, **options.DB_MUST_FINISH
        )
        self._steps.append("choose_method")
        reference = payment_reference(self._order.order_id, attempt) if attempt > 1 else None
        self._order = self._order.model_copy(
            update={
                "channel": request.channel,
                "channel_fee_rate": request.channel_fee_rate,
                "notify_url": request.notify_url,
                "payment_attempt": attempt,
                "payment_reference": reference,
            }
        )
        self._ref = self._ref.model_copy(update={"channel": request.channel})
        workflow.upsert_search_attributes([PAYMENT_CHANNEL.value_set(request.channel)])
        return await self._open_attempt("the channel did not take the payment")

    async def _close_for_change(self) -> Applied | None:
        """Close the pending payment so its amount can no longer be paid: None once it is
        closed, else the change's outcome and refusal."""
        try:
            result: CloseResult = await workflow.execute_local_activity_method(
                ChannelCalls.close_payment, self._payment_ref(), **options.CHANNEL_TRY
            )
        except options.StepFailed as error:
            if failure_type(error) == PAYMENT_NOT_FOUND:
                return None  # nothing at the channel can take the old amount
            message = f"the pending payment could not be closed: {error.cause or error}"
            if failure_type(error) == CHANNEL_REJECTED:
                return None, refused(message)
            return None, refused(f"{message}; try again", MODIFICATION_FAILED)
        self._steps.append("close_payment")
        if result.closed:
            return None
        if result.payment.status == PaymentStatus.PAID:
            signal = signal_from_state(result.payment, "close", self._order.payment_attempt)
            if await self._accept(signal):
                return WaitEnd.PAID, refused("the buyer paid the order first; it stays as it was")
            return None, refused("the channel reports a payment that needs review")
        return None, refused("the channel would not close the pending payment")

    async def _open_attempt(self, refusal: str) -> Applied:
        """Create the order's current attempt at its channel (after a modification or the
        buyer's choice of method): (None, None), or the outcome that closes the order."""
        self._checkout = None
        timeout = timedelta(seconds=self._order.payment_timeout_seconds)
        try:
            self._checkout = await workflow.execute_local_activity_method(
                ChannelCalls.create_payment, self._order, **options.channel_create(timeout)
            )
        except options.StepFailed:
            return WaitEnd.CHANNEL_FAILED, refused(
                f"{refusal}; the order closes", MODIFICATION_FAILED
            )
        self._steps.append("create_payment")
        return None, None
