"""A channel's bill (对账单) for one day, before any channel's format: what its records say.

    BillEntry      one line: a payment paid that day, or a refund that succeeded that day
    day_window     a bill day in unix seconds, [start, end): Alipay and WeChat Pay cut their
                   bills at Beijing midnight, the card gateway at UTC midnight
    BillDesk       builds a day's entries from the store with their fees, applies the
                   discrepancies planted for that day (`sandbox.bill_plants`), and says
                   whether the day's bill is published yet

Fees: the sandbox charges what our contract with each channel says, the same
`settings.channel_fee_rates` our split uses, on each payment, rounded half up to
whole minor units (`domain.money.apply_rate`). A refund gives back the fee in
proportion to what is left of the payment (`domain.money.prorate`, half up), as
Alipay and WeChat Pay do: a full refund returns the whole fee, and the refunds of a
payment return at most the fee it paid. With no plant, a day's bill therefore
agrees with our records to the minor unit.

A day is published once it has ended (real channels publish the next morning:
Alipay after 09:00, WeChat Pay after 10:00 Beijing time; the sandbox does not make
anyone wait), or earlier when a test publishes it (`publish`); a `not_ready` plant
holds it back. The bill is built when asked for, from the records as they are.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import TypeVar

from channels.base import ChannelName
from domain.money import apply_rate, prorate
from sandbox.bill_entries import BillEntry, day_window, derived_trade_no
from sandbox.bill_plants import (
    TARGETED,
    BillPlants,
    DiscrepancyKind,
    PlantedDiscrepancy,
    PlantRequest,
    new_plant_id,
)
from sandbox.errors import SandboxError
from sandbox.store import PaymentRecord, RefundRecord, Store

_T = TypeVar("_T")


class BillDesk:
    """Each channel's bills, built on demand from `store`; plants and early publishing in memory."""

    def __init__(self, store: Store, fee_rates: Mapping[str, Decimal]) -> None:
        self.store = store
        self.plants = BillPlants()
        self._fee_rates = fee_rates
        self._published: set[tuple[ChannelName, date]] = set()

    def fee_rate(self, channel: ChannelName) -> Decimal:
        return self._fee_rates.get(channel.value, Decimal(0))

    def publish(self, channel: ChannelName, day: date) -> None:
        """Publish `day`'s bill before the day has ended (its cut-off came early)."""
        self._published.add((channel, day))

    def ready(self, channel: ChannelName, day: date, now: float) -> bool:
        if self.plants.holds_back(channel, day):
            return False
        return (channel, day) in self._published or day_window(channel, day)[1] <= now

    async def entries(self, channel: ChannelName, day: date) -> list[BillEntry]:
        """The day's lines as the channel bills them: its records, then the plants."""
        return self.plants.apply(channel, day, await self.recorded(channel, day))

    async def recorded(self, channel: ChannelName, day: date) -> list[BillEntry]:
        """The day's lines exactly as the channel's records have them."""
        start, end = day_window(channel, day)
        payments = [
            self._payment_entry(p) for p in await self.store.paid_between(channel, start, end)
        ]
        refunds = await self.store.refunds_succeeded_between(channel, start, end)
        refund_entries = [await self._refund_entry(r) for r in refunds]
        return sorted(payments + refund_entries, key=lambda e: e.at)

    def payment_entry(self, payment: PaymentRecord, at: float) -> BillEntry:
        """A payment's line as if it were paid at `at` (a planted payment's)."""
        return replace(self._payment_entry(payment), at=at)

    def _payment_entry(self, payment: PaymentRecord) -> BillEntry:
        at = payment.paid_at or 0.0
        return BillEntry(
            kind="payment",
            reference=payment.out_trade_no,
            order_reference=payment.out_trade_no,
            trade_no=payment.txn_id or derived_trade_no(payment.out_trade_no),
            amount=payment.amount,
            fee=apply_rate(payment.amount, self.fee_rate(payment.channel)),
            currency=payment.currency,
            at=at,
            description=payment.description,
            merchant_id=payment.merchant_id,
            payment_amount=payment.amount,
            created_at=at,
        )

    async def _refund_entry(self, refund: RefundRecord) -> BillEntry:
        payment = await self.store.payment((refund.channel, refund.out_trade_no))
        return BillEntry(
            kind="refund",
            reference=refund.refund_id,
            order_reference=refund.out_trade_no,
            trade_no=payment.txn_id or derived_trade_no(payment.out_trade_no),
            amount=refund.amount,
            fee=await self._returned_fee(payment, refund),
            currency=refund.currency,
            at=refund.succeeded_at or 0.0,
            description=payment.description,
            merchant_id=payment.merchant_id,
            payment_amount=payment.amount,
            created_at=payment.paid_at or 0.0,
        )

    async def _returned_fee(self, payment: PaymentRecord, refund: RefundRecord) -> int:
        """The refund's share of the fee left after the refunds that succeeded before it."""
        fee_left = apply_rate(payment.amount, self.fee_rate(payment.channel))
        amount_left = payment.amount
        for earlier in await self.store.succeeded_refunds_of(payment):
            share = prorate(earlier.amount, fee_left, amount_left) if amount_left else 0
            if earlier.refund_id == refund.refund_id:
                return share
            fee_left -= share
            amount_left -= earlier.amount
        return 0  # not among the succeeded: it is not on any bill

    # -- plants -------------------------------------------------------------

    async def plant(
        self, channel: ChannelName, day: date, request: PlantRequest
    ) -> PlantedDiscrepancy:
        """Plant one discrepancy in the day's bill; SandboxError if it cannot apply."""
        base = {"id": new_plant_id(), "channel": channel, "day": day, "kind": request.kind}
        added: BillEntry | None = None
        if request.kind in TARGETED:
            discrepancy = await self._targeted(channel, day, request, base)
        elif request.kind == DiscrepancyKind.UNKNOWN_PAYMENT:
            added = self._unknown_payment(channel, day, request)
        elif request.kind == DiscrepancyKind.PAID_THERE:
            added = await self._paid_there(channel, day, request)
        else:
            discrepancy = PlantedDiscrepancy.model_validate(base)
        if added is not None:
            discrepancy = PlantedDiscrepancy.model_validate(
                {**base, "line": "payment", "reference": added.reference,
                 "channel_id": added.trade_no, "amount": added.amount, "fee": added.fee}
            )  # fmt: skip
        self.plants.add(discrepancy, added)
        return discrepancy

    async def _targeted(
        self, channel: ChannelName, day: date, request: PlantRequest, base: dict[str, object]
    ) -> PlantedDiscrepancy:
        kinds = TARGETED[request.kind]
        wanted = {request.line} & kinds if request.line else kinds
        entry = next(
            (
                e
                for e in await self.entries(channel, day)
                if e.reference == request.reference and e.kind in wanted
            ),
            None,
        )
        if entry is None:
            raise SandboxError(404, "bill_line_not_found", "no such line in that day's bill")
        amount, fee = entry.amount, entry.fee
        if request.kind == DiscrepancyKind.AMOUNT_CHANGED:
            amount = _required(request.amount, "amount")
        elif request.kind == DiscrepancyKind.FEE_CHANGED:
            fee = _required(request.fee, "fee")
        return PlantedDiscrepancy.model_validate(
            {**base, "line": entry.kind, "reference": entry.reference,
             "channel_id": entry.trade_no, "amount": amount, "fee": fee,
             "recorded_amount": entry.amount, "recorded_fee": entry.fee}
        )  # fmt: skip

    def _unknown_payment(self, channel: ChannelName, day: date, request: PlantRequest) -> BillEntry:
        reference = request.reference or f"ord_{secrets.token_hex(8)}"
        amount = request.amount or 12_34
        fee = request.fee if request.fee is not None else apply_rate(amount, self.fee_rate(channel))
        at = _midday(channel, day)
        return BillEntry(
            kind="payment", reference=reference, order_reference=reference,
            trade_no=derived_trade_no(reference), amount=amount, fee=fee,
            currency="CNY" if channel != ChannelName.CARD else "USD",
            at=at, description="?", payment_amount=amount, created_at=at,
        )  # fmt: skip

    async def _paid_there(
        self, channel: ChannelName, day: date, request: PlantRequest
    ) -> BillEntry:
        payment = await self.store.payment((channel, _required(request.reference, "reference")))
        if payment.status == "paid":
            raise SandboxError(409, "payment_already_paid", "paid_there wants an unpaid payment")
        return self.payment_entry(payment, _midday(channel, day))


def _midday(channel: ChannelName, day: date) -> float:
    start, end = day_window(channel, day)
    return (start + end) / 2


def _required(value: _T | None, name: str) -> _T:
    if value is None:
        raise SandboxError(400, "invalid_request", f"this discrepancy needs {name}")
    return value
