"""The sandbox's memory: payments, refunds, payouts, injected faults and the delivery log.

Every state transition happens here, under one `asyncio.Lock`, and returns
frozen snapshots so callers can read them after the lock is released.
Payments are keyed by (channel, out_trade_no) and refunds by (channel,
refund_id), as a real channel scopes them per merchant account. Faults,
refund behaviour and deliveries are keyed by out_trade_no alone because the
control API that sets and reads them has no channel in its path. Payouts are
keyed by payout_id; their faults and behaviour by merchant_id, their
deliveries by payout_id, in the same maps.

With a `path`, payments, refunds and payouts are also appended to a journal
(`sandbox.journal`: one line per change, so a write costs the same
however long the history) and read back at start, so the sandbox, like a
real channel, remembers them across a restart. So are the notifications not yet
taken (`HeldNotice`): a channel's queue outlives its outage, and the notifier sends
them again after a restart (a late payment is known by its notification alone: its
saga has ended and polls no more). A change that owes one is told it (`tell`, the
service's: `sandbox.notices.Owed`) and writes both in one journal line, so no crash
leaves a payment paid (a refund made final, a payout settled) with no notice owed.
Faults, refund and payout behaviour and the delivery log are test scaffolding and stay
in memory. A payout pending at a restart stays pending (its settlement timer is gone)
until the control API completes or fails it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from channels.base import ChannelName
from domain.fx.conversion import Conversion
from sandbox.bill_entries import day_of
from sandbox.channel_fx import Charge
from sandbox.errors import SandboxError
from sandbox.journal import Journal
from sandbox.notices import HeldNotice, Owed
from sandbox.protocol import (
    PaymentCreate,
    PaymentStatus,
    PayoutCreate,
    PayoutStatus,
    RefundCreate,
    RefundStatus,
)
from sandbox.sweeps import SweepRecord, day_sweeps

PaymentKey = tuple[ChannelName, str]
RefundKey = tuple[ChannelName, str]
RefundMode = Literal["succeed", "pending", "fail"]
PayoutMode = Literal["succeed", "fail", "hold"]
PayoutOutcome = Literal["paid", "failed"]

REFUND_REFUSED = "sandbox_refund_refused"
PAYOUT_REFUSED = "account_frozen"
_REFUND_STATUS_FOR_MODE: dict[RefundMode, RefundStatus] = {
    "succeed": "succeeded",
    "pending": "pending",
    "fail": "failed",
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class PaymentRecord:
    channel: ChannelName
    payment_id: str
    out_trade_no: str
    merchant_id: str
    amount: int
    currency: str
    description: str
    notify_url: str
    status: PaymentStatus = "pending"
    txn_id: str | None = None
    paid_at: float | None = None  # unix seconds, by the channel's clock: which day's bill
    # Cross-border (a wallet's foreign price): the CNY the buyer pays, at the channel's
    # rate (CNY per price unit, a decimal string), fixed when the payment is created.
    payer_amount: int | None = None
    payer_currency: str | None = None
    channel_rate: str | None = None

    @property
    def key(self) -> PaymentKey:
        return (self.channel, self.out_trade_no)


@dataclass(frozen=True)
class RefundRecord:
    channel: ChannelName
    refund_id: str
    out_trade_no: str
    amount: int
    currency: str
    reason: str
    status: RefundStatus
    failure_reason: str | None = None
    succeeded_at: float | None = None  # unix seconds: which day's bill shows it
    # Cross-border: the CNY given back, at the channel's rate when the refund was made.
    payer_amount: int | None = None
    payer_currency: str | None = None
    channel_rate: str | None = None


def _charged(charge: Charge | None) -> dict[str, Any]:
    if charge is None:
        return {}
    return {
        "payer_amount": charge.payer_amount,
        "payer_currency": charge.payer_currency,
        "channel_rate": str(charge.rate),
    }


@dataclass(frozen=True)
class PayoutRecord:
    payout_id: str
    merchant_id: str
    amount: int
    currency: str
    beneficiary: str
    notify_url: str
    status: PayoutStatus = "pending"
    failure_reason: str | None = None
    bank_reference: str | None = None
    credit_currency: str | None = None  # converted for the beneficiary into this
    credited_amount: int | None = None  # fixed when the payout is accepted
    credit_rate: str | None = None


def credit_currency(request: PayoutCreate) -> str | None:
    """The currency the payout converts into, if any (its own currency: none)."""
    asked = request.credit_currency
    return None if asked == request.currency else asked


@dataclass(frozen=True)
class DeliveryAttempt:
    event_id: str
    type: str
    attempt: int
    status_code: int | None
    error: str | None
    accepted: bool  # the answer was the channel's "taken" (Alipay: exactly `success`)
    waited_s: float  # the schedule's delay before this attempt, in channel seconds
    at_s: float  # channel seconds since the first attempt, as measured


# What a change tells its receiver (`Owed`, or None when nothing is sent), asked once the
# change is decided, under the lock: it is written with the change, or not at all.
PaymentTell = Callable[[PaymentRecord], Owed | None]
RefundTell = Callable[[PaymentRecord, RefundRecord], Owed | None]
PayoutTell = Callable[[PayoutRecord], Owed | None]


def tells_nothing(*_: object) -> None:
    return None


def _not_found(what: str) -> SandboxError:
    return SandboxError(404, f"{what}_not_found")


class Store:
    def __init__(self, path: Path | None = None) -> None:
        self._journal = Journal(path) if path is not None else None
        self._lock = asyncio.Lock()
        self._payments: dict[PaymentKey, PaymentRecord] = {}
        self._payment_keys_by_id: dict[str, PaymentKey] = {}
        self._refunds: dict[RefundKey, RefundRecord] = {}
        self._faults: dict[str, int] = {}
        self._refund_modes: dict[str, RefundMode] = {}
        self._payouts: dict[str, PayoutRecord] = {}
        self._payout_modes: dict[str, PayoutMode] = {}
        self._deliveries: dict[str, list[DeliveryAttempt]] = {}
        self._sweeps: dict[str, SweepRecord] = {}
        self._notices: dict[str, HeldNotice] = {}
        if self._journal is not None:
            self._load(self._journal.state)

    # -- payments ---------------------------------------------------------

    async def create_payment(
        self, channel: ChannelName, request: PaymentCreate, charge: Charge | None = None
    ) -> PaymentRecord:
        """Create, or return the payment already created with the same parameters.

        `charge` is what the buyer of a cross-border payment pays; a payment created
        again keeps the charge it was created with."""
        async with self._lock:
            existing = self._payments.get((channel, request.out_trade_no))
            if existing is not None:
                same = (existing.merchant_id, existing.amount, existing.currency) == (
                    request.merchant_id,
                    request.amount,
                    request.currency,
                )
                if not same:
                    raise SandboxError(409, "out_trade_no_conflict")
                return existing
            payment = PaymentRecord(
                channel=channel,
                payment_id=new_id("pay"),
                out_trade_no=request.out_trade_no,
                merchant_id=request.merchant_id,
                amount=request.amount,
                currency=request.currency,
                description=request.description,
                notify_url=request.notify_url,
                **_charged(charge),
            )
            self._payment_keys_by_id[payment.payment_id] = payment.key
            return self._save(payment)

    async def payment(self, key: PaymentKey) -> PaymentRecord:
        async with self._lock:
            return self._payment(key)

    async def find_payment(self, out_trade_no: str, channel: ChannelName | None) -> PaymentRecord:
        """Find by out_trade_no, in one channel or (if unambiguous) in any."""
        async with self._lock:
            channels = [channel] if channel else list(ChannelName)
            found = [
                self._payments[(c, out_trade_no)]
                for c in channels
                if (c, out_trade_no) in self._payments
            ]
            if not found:
                raise _not_found("payment")
            if len(found) > 1:
                raise SandboxError(409, "ambiguous_out_trade_no", "pass ?channel= to choose")
            return found[0]

    async def payment_by_id(self, channel: ChannelName, payment_id: str) -> PaymentRecord:
        async with self._lock:
            key = self._payment_keys_by_id.get(payment_id)
            if key is None or key[0] != channel:
                raise _not_found("payment")
            return self._payments[key]

    async def close_payment(self, key: PaymentKey) -> tuple[bool, PaymentRecord]:
        """Close a pending payment. A paid payment stays paid and is not closed."""
        async with self._lock:
            payment = self._payment(key)
            if payment.status == "paid":
                return False, payment
            if payment.status == "pending":
                payment = self._save(replace(payment, status="closed"))
            return True, payment

    async def mark_paid(
        self, key: PaymentKey, *, force: bool, tell: PaymentTell = tells_nothing
    ) -> tuple[PaymentRecord, Owed | None]:
        """Pay; `force` also pays a closed or declined payment (a late payment).

        Returns the payment and, if this call paid it, the notification that owes.
        """
        async with self._lock:
            payment = self._payment(key)
            if payment.status == "paid":
                return payment, None
            if payment.status != "pending" and not force:
                raise SandboxError(409, "payment_closed", f"payment is {payment.status}")
            paid = replace(payment, status="paid", txn_id=new_id("txn"), paid_at=time.time())
            owed = tell(paid)
            return self._save(paid, owed), owed

    async def mark_declined(
        self, key: PaymentKey, tell: PaymentTell = tells_nothing
    ) -> tuple[PaymentRecord, Owed | None]:
        async with self._lock:
            payment = self._payment(key)
            if payment.status == "declined":
                return payment, None
            if payment.status == "paid":
                raise SandboxError(409, "payment_already_paid")
            if payment.status == "closed":
                raise SandboxError(409, "payment_closed")
            declined = replace(payment, status="declined")
            owed = tell(declined)
            return self._save(declined, owed), owed

    # -- refunds ----------------------------------------------------------

    async def create_refund(
        self,
        channel: ChannelName,
        request: RefundCreate,
        charge: Charge | None = None,
        tell: RefundTell = tells_nothing,
    ) -> tuple[RefundRecord, Owed | None]:
        """Create a refund (its status set by the payment's refund mode), or return
        the one with this refund_id. Returns the refund and, if it is new and final
        (succeeded or failed, not pending), the notification that owes."""
        async with self._lock:
            existing = self._refunds.get((channel, request.refund_id))
            if existing is not None:
                same = (existing.out_trade_no, existing.amount, existing.currency) == (
                    request.out_trade_no,
                    request.amount,
                    request.currency,
                )
                if not same:
                    raise SandboxError(409, "refund_id_conflict")
                return existing, None
            payment = self._payment((channel, request.out_trade_no))
            self._check_refundable(payment, request)
            mode = self._refund_modes.get(request.out_trade_no, "succeed")
            status = _REFUND_STATUS_FOR_MODE[mode]
            refund = RefundRecord(
                channel=channel,
                refund_id=request.refund_id,
                out_trade_no=request.out_trade_no,
                amount=request.amount,
                currency=request.currency,
                reason=request.reason,
                status=status,
                failure_reason=REFUND_REFUSED if status == "failed" else None,
                succeeded_at=time.time() if status == "succeeded" else None,
                **_charged(charge),
            )
            owed = tell(payment, refund) if status != "pending" else None
            return self._save_refund(refund, owed), owed

    async def refund(self, key: RefundKey) -> RefundRecord:
        async with self._lock:
            return self._refund(key)

    async def find_refund(self, refund_id: str, channel: ChannelName | None) -> RefundRecord:
        async with self._lock:
            channels = [channel] if channel else list(ChannelName)
            found = [
                self._refunds[(c, refund_id)] for c in channels if (c, refund_id) in self._refunds
            ]
            if not found:
                raise _not_found("refund")
            if len(found) > 1:
                raise SandboxError(409, "ambiguous_refund_id", "pass ?channel= to choose")
            return found[0]

    async def complete_refund(
        self, key: RefundKey, tell: RefundTell = tells_nothing
    ) -> tuple[RefundRecord, Owed | None]:
        """A pending refund succeeds. Returns the refund and, if this call completed it,
        the notification that owes."""
        async with self._lock:
            refund = self._refund(key)
            if refund.status == "succeeded":
                return refund, None
            if refund.status == "failed":
                raise SandboxError(409, "refund_failed")
            completed = replace(refund, status="succeeded", succeeded_at=time.time())
            owed = tell(self._payment((refund.channel, refund.out_trade_no)), completed)
            return self._save_refund(completed, owed), owed

    # -- the day's bill (sandbox.bills) -----------------------------------

    async def paid_between(
        self, channel: ChannelName, start: float, end: float
    ) -> list[PaymentRecord]:
        """The channel's payments paid in [start, end) (unix seconds), oldest first."""
        async with self._lock:
            found = [
                p
                for (c, _), p in self._payments.items()
                if c == channel and p.paid_at is not None and start <= p.paid_at < end
            ]
        return sorted(found, key=lambda p: p.paid_at or 0.0)

    async def refunds_succeeded_between(
        self, channel: ChannelName, start: float, end: float
    ) -> list[RefundRecord]:
        """The channel's refunds that succeeded in [start, end), oldest first."""
        async with self._lock:
            found = [
                r
                for (c, _), r in self._refunds.items()
                if c == channel and r.succeeded_at is not None and start <= r.succeeded_at < end
            ]
        return sorted(found, key=lambda r: r.succeeded_at or 0.0)

    async def succeeded_refunds_of(self, payment: PaymentRecord) -> list[RefundRecord]:
        """Every refund of `payment` that succeeded, in the order they succeeded."""
        async with self._lock:
            found = [
                r
                for (c, _), r in self._refunds.items()
                if c == payment.channel
                and r.out_trade_no == payment.out_trade_no
                and r.succeeded_at is not None
            ]
        return sorted(found, key=lambda r: r.succeeded_at or 0.0)

    # -- payouts ----------------------------------------------------------

    async def create_payout(
        self, request: PayoutCreate, conversion: Callable[[], Conversion | None] = lambda: None
    ) -> tuple[PayoutRecord, bool]:
        """Create a pending payout (converted for the beneficiary if `conversion()`, asked
        only for a new payout, says so), or return the one with this payout_id if it moves
        the same money to the same beneficiary. Returns the payout and whether it is new."""
        async with self._lock:
            existing = self._payouts.get(request.payout_id)
            if existing is None:
                credit = conversion()
                payout = PayoutRecord(
                    payout_id=request.payout_id,
                    merchant_id=request.merchant_id,
                    amount=request.amount,
                    currency=request.currency,
                    beneficiary=request.beneficiary,
                    notify_url=request.notify_url,
                )
                if credit is not None:
                    payout = replace(
                        payout,
                        credit_currency=credit.target_currency,
                        credited_amount=credit.target_amount,
                        credit_rate=str(credit.rate),
                    )
                return self._save_payout(payout), True
            asked = (request.merchant_id, request.amount, request.currency, request.beneficiary)
            same = (
                existing.merchant_id,
                existing.amount,
                existing.currency,
                existing.beneficiary,
            ) == asked and existing.credit_currency == credit_currency(request)
            if not same:
                raise SandboxError(409, "payout_id_conflict")
            return existing, False

    async def payout(self, payout_id: str) -> PayoutRecord:
        async with self._lock:
            return self._payout(payout_id)

    async def settle_payout(
        self, payout_id: str, outcome: PayoutOutcome, tell: PayoutTell = tells_nothing
    ) -> tuple[PayoutRecord, Owed | None]:
        """A pending payout is paid or fails. Returns the payout and, if this call settled
        it, the notification that owes.

        Settling again the same way changes nothing; the other way is a conflict,
        as a bank cannot take back a transfer it made (or make one it refused).
        """
        async with self._lock:
            payout = self._payout(payout_id)
            if payout.status == outcome:
                return payout, None
            if payout.status != "pending":
                raise SandboxError(409, "payout_settled", f"payout is {payout.status}")
            if outcome == "paid":
                settled = replace(payout, status="paid", bank_reference=new_id("bank"))
            else:
                settled = replace(payout, status="failed", failure_reason=PAYOUT_REFUSED)
            owed = tell(settled)
            return self._save_payout(settled, owed), owed

    async def set_payout_mode(self, merchant_id: str, mode: PayoutMode) -> None:
        async with self._lock:
            self._payout_modes[merchant_id] = mode

    async def payout_mode(self, merchant_id: str) -> PayoutMode:
        async with self._lock:
            return self._payout_modes.get(merchant_id, "succeed")

    # -- sweeps -----------------------------------------------------------

    async def sweep_day(
        self,
        channel: ChannelName,
        day: date,
        fee_rate: Decimal,
        conversions: Mapping[str, tuple[str, Decimal]] | None = None,
    ) -> list[SweepRecord]:
        """Pay the channel's takings of `day` into the platform's bank account: a transfer
        per currency (`sandbox.sweeps`, `conversions` says which it pays in another), each
        once: a transfer made before stands, only a currency not yet paid over is added."""
        async with self._lock:
            payments = [p for p in self._payments.values() if p.channel == channel]
            refunds = [r for r in self._refunds.values() if r.channel == channel]
            for sweep in day_sweeps(channel, day, fee_rate, payments, refunds, conversions):
                if sweep.transfer_id not in self._sweeps:
                    self._sweeps[sweep.transfer_id] = sweep
                    self._persist("sweeps", sweep)
            return self._day_sweeps(channel, day)

    async def sweeps(self, channel: ChannelName, day: date) -> list[SweepRecord]:
        async with self._lock:
            return self._day_sweeps(channel, day)

    async def days_with_takings(self, channel: ChannelName) -> set[date]:
        """The channel's business days on which money moved there (paid or paid back)."""
        async with self._lock:
            payments = self._payments.values()
            days = {
                day_of(channel, p.paid_at) for p in payments if p.channel == channel and p.paid_at
            }
            days |= {
                day_of(channel, r.succeeded_at)
                for r in self._refunds.values()
                if r.channel == channel and r.succeeded_at
            }
            return days

    def _day_sweeps(self, channel: ChannelName, day: date) -> list[SweepRecord]:
        iso = day.isoformat()
        return sorted(
            (s for s in self._sweeps.values() if s.channel == channel and s.day == iso),
            key=lambda s: s.transfer_id,
        )

    # -- test controls ----------------------------------------------------

    async def set_faults(self, out_trade_no: str, api_failures: int) -> None:
        async with self._lock:
            self._faults[out_trade_no] = api_failures

    async def take_fault(self, out_trade_no: str) -> bool:
        """Consume one injected API failure for this out_trade_no, if any is left."""
        async with self._lock:
            left = self._faults.get(out_trade_no, 0)
            if left <= 0:
                return False
            self._faults[out_trade_no] = left - 1
            return True

    async def set_refund_mode(self, out_trade_no: str, mode: RefundMode) -> None:
        async with self._lock:
            self._refund_modes[out_trade_no] = mode

    async def record_delivery(self, out_trade_no: str, attempt: DeliveryAttempt) -> None:
        async with self._lock:
            self._deliveries.setdefault(out_trade_no, []).append(attempt)

    async def deliveries(self, out_trade_no: str) -> list[DeliveryAttempt]:
        async with self._lock:
            return list(self._deliveries.get(out_trade_no, []))

    # -- notifications owed (the notifier's outbox) ----------------------------
    # A change holds the notice it owes as it is written (`_persist`); `hold_notice` holds
    # one no change owes. Not async: the notifier releases a notice as it is taken, before
    # anything awaits; no await inside, so each runs whole under the event loop.

    def hold_notice(self, notice: HeldNotice) -> None:
        self._notices[notice.event_id] = notice
        self._persist("notices", notice)

    def release_notice(self, event_id: str) -> None:
        """The notification was taken (or given up on): not sent again after a restart."""
        if self._notices.pop(event_id, None) is not None and self._journal is not None:
            self._journal.remove("notices", {"event_id": event_id})

    def held_notices(self) -> list[HeldNotice]:
        return list(self._notices.values())

    # -- helpers (call with the lock held) --------------------------------

    def _payment(self, key: PaymentKey) -> PaymentRecord:
        payment = self._payments.get(key)
        if payment is None:
            raise _not_found("payment")
        return payment

    def _refund(self, key: RefundKey) -> RefundRecord:
        refund = self._refunds.get(key)
        if refund is None:
            raise _not_found("refund")
        return refund

    def _payout(self, payout_id: str) -> PayoutRecord:
        payout = self._payouts.get(payout_id)
        if payout is None:
            raise _not_found("payout")
        return payout

    def _save(self, payment: PaymentRecord, owed: Owed | None = None) -> PaymentRecord:
        self._payments[payment.key] = payment
        self._persist("payments", payment, owed)
        return payment

    def _save_refund(self, refund: RefundRecord, owed: Owed | None = None) -> RefundRecord:
        self._refunds[(refund.channel, refund.refund_id)] = refund
        self._persist("refunds", refund, owed)
        return refund

    def _save_payout(self, payout: PayoutRecord, owed: Owed | None = None) -> PayoutRecord:
        self._payouts[payout.payout_id] = payout
        self._persist("payouts", payout, owed)
        return payout

    def _persist(
        self,
        kind: str,
        record: PaymentRecord | RefundRecord | PayoutRecord | SweepRecord | HeldNotice,
        owed: Owed | None = None,
    ) -> None:
        """Write `record`, and the notice it owes in the same line: a crash keeps both or
        neither (two lines could leave a payment paid and nothing owed to tell of it)."""
        notice = owed.notice if owed is not None else None
        if notice is not None:
            self._notices[notice.event_id] = notice
        if self._journal is None:
            return
        if notice is None:
            self._journal.append(kind, asdict(record))
        else:
            self._journal.append_together([(kind, asdict(record)), ("notices", asdict(notice))])

    def _load(self, state: dict[str, list[dict[str, Any]]]) -> None:
        for raw in state["payments"]:
            payment = PaymentRecord(**{**raw, "channel": ChannelName(raw["channel"])})
            self._payments[payment.key] = payment
            self._payment_keys_by_id[payment.payment_id] = payment.key
        for raw in state["refunds"]:
            refund = RefundRecord(**{**raw, "channel": ChannelName(raw["channel"])})
            self._refunds[(refund.channel, refund.refund_id)] = refund
        for raw in state["payouts"]:
            payout = PayoutRecord(**raw)
            self._payouts[payout.payout_id] = payout
        for raw in state["sweeps"]:
            sweep = SweepRecord(**{**raw, "channel": ChannelName(raw["channel"])})
            self._sweeps[sweep.transfer_id] = sweep
        for raw in state["notices"]:
            notice = HeldNotice(**raw)
            self._notices[notice.event_id] = notice

    def _check_refundable(self, payment: PaymentRecord, request: RefundCreate) -> None:
        if payment.status != "paid":
            raise SandboxError(400, "payment_not_paid")
        if request.currency != payment.currency:
            raise SandboxError(400, "currency_mismatch")
        refunded = sum(
            r.amount
            for (channel, _), r in self._refunds.items()
            if channel == payment.channel
            and r.out_trade_no == payment.out_trade_no
            and r.status != "failed"
        )
        if refunded + request.amount > payment.amount:
            raise SandboxError(400, "refund_exceeds_payment")
