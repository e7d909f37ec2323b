"""What each sandbox action does: a store transition, then the notification it causes.

The notification is decided inside the transition (`tell`) and written with it, in one
journal line, and sent once the transition has returned: a crash between the two never
leaves a payment paid with nothing owed to tell of it.

The routers (channel API, cashier, control) only translate HTTP to these calls,
so a payment made on the cashier page and one made through the control API
behave identically.
"""

from __future__ import annotations

from collections.abc import Mapping

from channels.base import ChannelName, is_cross_border
from sandbox.channel_fx import ChannelFx, Charge
from sandbox.errors import SandboxError
from sandbox.events import payment_event, refund_event
from sandbox.notices import Owed
from sandbox.notifier import DeliveryMode, Notifier, NotifyProtocol
from sandbox.protocol import (
    CloseResponse,
    EventType,
    Payment,
    PaymentCreate,
    Refund,
    RefundCreate,
)
from sandbox.store import PaymentRecord, RefundRecord, Store

# Wallet channels hand the buyer a QR code; card payments happen on the page.
_QR_CHANNELS = frozenset({ChannelName.ALIPAY, ChannelName.WECHATPAY})


class SandboxService:
    """The channels' common behaviour; each channel's front speaks its protocol over it,
    and `protocols` says how each channel's notifications go on the wire."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        base_url: str,
        protocols: Mapping[ChannelName, NotifyProtocol],
        fx: ChannelFx | None = None,
    ) -> None:
        self.store = store
        self._notifier = notifier
        self._base_url = base_url.rstrip("/")
        self._protocols = protocols
        self._fx = fx or ChannelFx()

    # -- the channel API ----------------------------------------------------

    async def create_payment(self, channel: ChannelName, request: PaymentCreate) -> Payment:
        await fail_if_faulted(self.store, request.out_trade_no)
        charge = self._charge(channel, request.amount, request.currency)
        return self.payment_view(await self.store.create_payment(channel, request, charge))

    async def get_payment(self, channel: ChannelName, out_trade_no: str) -> Payment:
        await fail_if_faulted(self.store, out_trade_no)
        return self.payment_view(await self.store.payment((channel, out_trade_no)))

    async def close_payment(self, channel: ChannelName, out_trade_no: str) -> CloseResponse:
        await fail_if_faulted(self.store, out_trade_no)
        closed, payment = await self.store.close_payment((channel, out_trade_no))
        return CloseResponse(closed=closed, payment=self.payment_view(payment))

    async def create_refund(self, channel: ChannelName, request: RefundCreate) -> Refund:
        await fail_if_faulted(self.store, request.out_trade_no)
        charge = self._charge(channel, request.amount, request.currency)
        refund, owed = await self.store.create_refund(channel, request, charge, self._tell_refund)
        self._notifier.start(owed, self._protocols[channel])
        return refund_view(refund)

    async def get_refund(self, channel: ChannelName, refund_id: str) -> Refund:
        refund = await self.store.refund((channel, refund_id))
        await fail_if_faulted(self.store, refund.out_trade_no)
        return refund_view(refund)

    # -- the buyer and the test controls -------------------------------------

    async def pay(
        self,
        payment: PaymentRecord,
        *,
        force: bool = False,
        mode: DeliveryMode = DeliveryMode.NORMAL,
        delay_ms: int = 0,
    ) -> PaymentRecord:
        """The buyer pays. Paying again changes nothing and sends nothing."""
        protocol = self._protocols[payment.channel]

        def tell(paid: PaymentRecord) -> Owed | None:
            event = payment_event("payment.succeeded", paid)
            return self._notifier.owe(paid.notify_url, event, protocol, mode, delay_ms)

        paid, owed = await self.store.mark_paid(payment.key, force=force, tell=tell)
        self._notifier.start(owed, protocol)
        return paid

    async def decline(
        self, payment: PaymentRecord, mode: DeliveryMode = DeliveryMode.NORMAL
    ) -> PaymentRecord:
        protocol = self._protocols[payment.channel]

        def tell(declined: PaymentRecord) -> Owed | None:
            event = payment_event("payment.declined", declined)
            return self._notifier.owe(declined.notify_url, event, protocol, mode)

        declined, owed = await self.store.mark_declined(payment.key, tell)
        self._notifier.start(owed, protocol)
        return declined

    async def complete_refund(self, refund: RefundRecord) -> RefundRecord:
        key = (refund.channel, refund.refund_id)
        completed, owed = await self.store.complete_refund(key, self._tell_refund)
        self._notifier.start(owed, self._protocols[refund.channel])
        return completed

    def payment_view(self, payment: PaymentRecord) -> Payment:
        checkout_url = f"{self._base_url}/{payment.channel}/checkout/{payment.payment_id}"
        return Payment(
            payment_id=payment.payment_id,
            out_trade_no=payment.out_trade_no,
            merchant_id=payment.merchant_id,
            amount=payment.amount,
            currency=payment.currency,
            status=payment.status,
            txn_id=payment.txn_id,
            checkout_url=checkout_url,
            qr_payload=checkout_url if payment.channel in _QR_CHANNELS else None,
            payer_amount=payment.payer_amount,
            payer_currency=payment.payer_currency,
            channel_rate=payment.channel_rate,
        )

    def _charge(self, channel: ChannelName, amount: int, currency: str) -> Charge | None:
        """The buyer's CNY for a wallet's foreign price (a payment, or a refund of one)."""
        if not is_cross_border(channel, currency):
            return None
        return self._fx.charge(amount, currency)

    def _tell_refund(self, payment: PaymentRecord, refund: RefundRecord) -> Owed | None:
        type_: EventType = "refund.succeeded" if refund.status == "succeeded" else "refund.failed"
        event = refund_event(type_, payment, refund)
        return self._notifier.owe(payment.notify_url, event, self._protocols[payment.channel])


async def fail_if_faulted(store: Store, key: str) -> None:
    """Answer 503 while injected faults for `key` (an out_trade_no or merchant_id) last."""
    if await store.take_fault(key):
        raise SandboxError(503, "unavailable", "injected fault")


def refund_view(refund: RefundRecord) -> Refund:
    return Refund(
        refund_id=refund.refund_id,
        out_trade_no=refund.out_trade_no,
        amount=refund.amount,
        currency=refund.currency,
        status=refund.status,
        failure_reason=refund.failure_reason,
        payer_amount=refund.payer_amount,
        payer_currency=refund.payer_currency,
        channel_rate=refund.channel_rate,
    )
