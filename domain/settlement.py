"""A merchant statement's numbers, from the entries it covers.

Every number is exact integer arithmetic on minor units; nothing is rounded
here (the rounding happened once, in each order's split and each refund's parts).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from domain.ledger import EntryKind
from domain.polling import PollTimings
from domain.split import Split


class PayoutStatus(enum.StrEnum):
    PENDING = "pending"  # asked of the bank; the money is in transit
    PAID = "paid"
    FAILED = "failed"  # the bank refused; the money is back in available


class StatementTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    opening_balance: int
    gross_amount: int
    channel_fee_amount: int
    commission_amount: int
    refunded_amount: int
    returned_amount: int
    clawback_amount: int
    payout_amount: int
    closing_balance: int
    order_count: int


_COVERED_KINDS = frozenset(
    {
        EntryKind.FUNDS_RELEASED,
        EntryKind.REFUND_RESERVED,
        EntryKind.REFUND_FAILED,
        EntryKind.PAYOUT_RETURNED,
    }
)


def statement_totals(
    *,
    opening_balance: int,
    current_balance: int,
    entries: Sequence[tuple[str, int]],
    released_orders: Sequence[Split],
) -> StatementTotals:
    """Totals for a statement covering `entries` ((entry kind, amount on available)).

    `released_orders` are the full splits of the orders whose release it covers. The
    payout is what the statement finds available (opening plus its entries), but never
    more than the balance is now (a refund since the cutoff may have lowered it) and
    never below zero.
    """
    by_kind = {kind: 0 for kind in _COVERED_KINDS}
    for kind, amount in entries:
        if kind not in by_kind:
            raise ValueError(f"entry kind {kind} has no place in a statement")
        by_kind[EntryKind(kind)] += amount
    gross = sum(s.payable_amount for s in released_orders)
    fees = sum(s.channel_fee_amount for s in released_orders)
    commission = sum(s.commission_amount for s in released_orders)
    net = gross - fees - commission
    # The merchant's part of refunds: what its orders' releases fell short of their
    # net, plus refunds after release, less refunds that failed back into available.
    refunded = (
        net
        - by_kind[EntryKind.FUNDS_RELEASED]
        - by_kind[EntryKind.REFUND_RESERVED]
        - by_kind[EntryKind.REFUND_FAILED]
    )
    stated = opening_balance + sum(amount for _, amount in entries)
    payout = max(0, min(stated, current_balance))
    return StatementTotals(
        opening_balance=opening_balance,
        gross_amount=gross,
        channel_fee_amount=fees,
        commission_amount=commission,
        refunded_amount=refunded,
        returned_amount=by_kind[EntryKind.PAYOUT_RETURNED],
        clawback_amount=max(0, -opening_balance),
        payout_amount=payout,
        closing_balance=stated - payout,
        order_count=len(released_orders),
    )


# Merchants one run of a day's settlement starts children for before it continues as new.
# A child costs its run about seven events (its start asked, started and ended, and the
# workflow tasks that wait for them; measured 6 to 8), so a page of 200 keeps a run near
# 1,400 events however many merchants the day has, far below Temporal's hard limit of
# 51,200 a history (and its suggestion to continue as new at 10,240), which 10,000
# merchants in one run would pass.
MERCHANTS_PER_RUN = 200


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class SettlementProgress(_Message):
    day: date | None
    merchants: int = 0
    settled: int = 0
    already_settled: int = 0
    # Merchants whose payouts this run prepared but could hand to no settlement of theirs
    # (workflows.settlement: logged); their payouts wait for a run of the day again.
    not_handed_over: int = 0
    # Earlier days with payouts no answer has come for, run again by this run (a run that
    # looks back: the daily Schedule's), so that a payout no settlement drives is asked for.
    days_run_again: tuple[date, ...] = ()


class SettlementRunInput(_Message):
    """Settle every merchant (or those listed) for `day`; None: the day before the run
    was scheduled.

    A run settles a page of `merchants_per_run` merchants, then continues as new after
    the last one it started (`after`), carrying what the day's earlier runs counted.
    After its last page, a run that looks back (`look_back_days`: the Schedule's runs)
    runs again each of the days before `day` within them that has a payout the bank has
    not answered, `unanswered_only` (workflows.settlement: a run of a day hands such
    payouts to their merchant's settlement, which asks for those it does not drive
    already).
    """

    day: date | None = None
    merchant_ids: tuple[str, ...] = ()
    polling: PollTimings = PollTimings()
    merchants_per_run: int = Field(default=MERCHANTS_PER_RUN, ge=1)
    after: str | None = None
    progress: SettlementProgress | None = None
    look_back_days: int = Field(default=0, ge=0)
    # Only hand over the day's payouts the bank has not answered, making no statement (a
    # day run again by a look back: a statement made now would be dated that past day).
    unanswered_only: bool = False


class MerchantsPage(_Message):
    """The next merchants to settle, in id order, and how many remain from them on."""

    merchant_ids: tuple[str, ...]
    remaining: int


class PayoutOrder(_Message):
    """A statement's payout, as the bank is to be asked for it: `amount` of `currency`
    leaves our account; `credit_currency`, when set, is what the bank converts it into for
    the merchant (its settlement currency)."""

    payout_id: str
    statement_id: str
    merchant_id: str
    amount: int
    currency: str
    beneficiary: str
    credit_currency: str | None = None


class PayoutCredit(_Message):
    """What the bank credited the merchant for a payout it converted: `amount` minor units
    of `currency`, at `rate` (credit units per payout unit, a decimal string)."""

    currency: str
    amount: int = Field(gt=0)
    rate: str


class PreparedStatements(_Message):
    """A merchant's statements for the day and its payouts still to be driven to the bank,
    as the day's run prepared them with its page (or found them prepared)."""

    merchant_id: str
    statement_ids: tuple[str, ...] = ()
    payouts: tuple[PayoutOrder, ...] = ()


class PreparedPage(_Message):
    """A page of merchants prepared in one transaction, in id order: every merchant after
    the run's cursor up to `through` with a statement to make or a payout of the day not
    finished, and how many such merchants remained from the cursor on."""

    merchants: tuple[PreparedStatements, ...]
    remaining: int
    through: str | None = None


class PayoutOutcome(_Message):
    payout_id: str
    paid: bool
    bank_reference: str | None = None
    failure_reason: str | None = None
    credited: PayoutCredit | None = None


class MerchantSettlementView(_Message):
    merchant_id: str
    day: date
    statement_ids: tuple[str, ...] = ()
    payouts: tuple[PayoutOutcome, ...] = ()
    pending_payouts: tuple[str, ...] = ()


class PendingPayout(_Message):
    """A payout the bank has not finished, and how long to wait before asking it again."""

    order: PayoutOrder
    next_poll_ms: int


class PayoutsWait(_Message):
    """What a merchant's settlement carries when it continues as new with payouts pending:
    its statements, the outcomes it recorded, and the bank's notices it has not judged."""

    statement_ids: tuple[str, ...]
    finished: tuple[PayoutOutcome, ...] = ()
    pending: tuple[PendingPayout, ...]
    notices: tuple[PayoutOutcome, ...] = ()
    handed: tuple[PayoutOrder, ...] = ()  # handed over by a later run, not yet asked for


class MerchantDay(_Message):
    merchant_id: str
    day: date
    polling: PollTimings = PollTimings()
    waiting: PayoutsWait | None = None  # a run continued from an earlier one
    # Its statements and payouts as the day's run prepared them (None: it prepares them).
    prepared: PreparedStatements | None = None
