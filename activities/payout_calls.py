"""Bank activities: ask for a payout, and ask what became of it.

The payout id is the bank's idempotency key. After an unknown outcome (a
timeout, a 5xx) a retry asks the bank about the payout first and only asks
for it again if the bank has never heard of it.
"""

from __future__ import annotations

from temporalio import activity

from activities.errors import CHANNEL_UNAVAILABLE, retryable_error
from channels.bank import BankTransferAdapter, PayoutRequest, PayoutState, PayoutStatus
from channels.errors import ChannelRejected, ChannelUnavailable, PayoutNotFound
from domain.settlement import PayoutOrder


class PayoutCalls:
    def __init__(self, bank: BankTransferAdapter, notify_url: str) -> None:
        self._bank = bank
        self._notify_url = notify_url

    @activity.defn
    async def send_payout(self, order: PayoutOrder) -> PayoutState:
        """Ask the bank to pay; a refusal comes back as a failed state, not an error."""
        try:
            if activity.info().attempt > 1:
                try:
                    return await self._bank.query_payout(order.payout_id)
                except PayoutNotFound:
                    pass  # the earlier attempt never reached the bank
            return await self._bank.create_payout(
                PayoutRequest(
                    payout_id=order.payout_id,
                    merchant_id=order.merchant_id,
                    amount=order.amount,
                    currency=order.currency,
                    beneficiary=order.beneficiary,
                    notify_url=self._notify_url,
                    credit_currency=order.credit_currency,
                )
            )
        except ChannelUnavailable as error:
            raise retryable_error(CHANNEL_UNAVAILABLE, error.message) from None
        except ChannelRejected as error:
            return await self._refused(order, error)

    async def _refused(self, order: PayoutOrder, error: ChannelRejected) -> PayoutState:
        """A refusal is final only if the bank has no such payout: a payout it has (a
        settlement started again asks with what it knows now, say, the merchant's new
        name: `payout_id_conflict`) is what it is, never returned to the merchant while
        the bank pays it."""
        try:
            return await self._bank.query_payout(order.payout_id)
        except PayoutNotFound:
            pass
        except ChannelUnavailable as unavailable:
            raise retryable_error(CHANNEL_UNAVAILABLE, unavailable.message) from None
        return PayoutState(
            payout_id=order.payout_id,
            merchant_id=order.merchant_id,
            amount=order.amount,
            currency=order.currency,
            status=PayoutStatus.FAILED,
            failure_reason=f"{error.code}: {error.message}",
        )

    @activity.defn
    async def query_payout(self, order: PayoutOrder) -> PayoutState:
        try:
            return await self._bank.query_payout(order.payout_id)
        except ChannelUnavailable as error:
            raise retryable_error(CHANNEL_UNAVAILABLE, error.message) from None
