"""Reconciliation (对账): a channel's bill for a day against our records, and what follows.

    a difference              -> an exception of a named type, with both sides' figures
    auto-resolvable exception -> the worker acts (AutoAction), then it is auto_resolved
    any other exception       -> waits for an operator, who resolves it with a reason
                                 and, where money must move, an approved adjusting entry

The day is the channel's business day in the channel's own time zone: Alipay and
WeChat Pay cut their bills at midnight China Standard Time (UTC+8, no daylight saving),
the card gateway at midnight UTC. Every instant here is UTC; `day_window` turns a
channel's day into the UTC interval its bill covers, `channel_day` an instant into the
channel's day. A channel settles (sweeps) the same business day its bill covers, so the
sweeps (db.sweeps, sandbox.sweeps) cut their days here too: this is the one definition.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, date, datetime, time, timedelta, timezone

from pydantic import BaseModel, ConfigDict

from domain.bills import BillLineKind
from domain.ledger import DEBIT_NORMAL, AccountKind, PostingLine, account_id

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
# The zone each channel cuts its bills in; a channel not listed cuts at UTC midnight.
BILL_ZONES: dict[str, timezone] = {"alipay": CHINA_STANDARD_TIME, "wechatpay": CHINA_STANDARD_TIME}


class DiscrepancyType(enum.StrEnum):
    MISSING_HERE = "missing_here"  # the channel has a payment or refund we have no record of
    MISSING_THERE = "missing_there"  # we have a paid payment the bill does not show
    AMOUNT_MISMATCH = "amount_mismatch"  # both have it, for different amounts or currencies
    STATUS_MISMATCH = "status_mismatch"  # paid/refunded there, unpaid/pending/failed here
    FEE_MISMATCH = "fee_mismatch"  # the channel's fee differs from the one we booked
    REFUND_MISSING = "refund_missing"  # we have a succeeded refund the bill does not show
    DUPLICATE_LINE = "duplicate_line"  # the bill lists one reference more than once
    BILL_NOT_READY = "bill_not_ready"  # no bill by the deadline
    BILL_CORRUPT = "bill_corrupt"  # the bill kept failing its checks


BILL_LEVEL = frozenset({DiscrepancyType.BILL_NOT_READY, DiscrepancyType.BILL_CORRUPT})


class ExceptionStatus(enum.StrEnum):
    OPEN = "open"  # waits for the worker's action or an operator
    AUTO_RESOLVED = "auto_resolved"
    RESOLVED = "resolved"  # by an operator, with a reason


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"


class AutoAction(enum.StrEnum):
    # Ask the channel for the payment; hand it to its saga (a lost notification), or
    # refund it when the order has ended (a late payment).
    DELIVER_PAYMENT = "deliver_payment"
    # Ask the channel for the refund's status and pass the answer on.
    REFRESH_REFUND = "refresh_refund"


def day_window(channel: str, day: date) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) that the channel's bill for `day` covers."""
    zone = BILL_ZONES.get(channel, UTC)
    start = datetime.combine(day, time(0), zone)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def channel_day(channel: str, at: datetime) -> date:
    """The channel's business day that the instant `at` falls in (the day of its bill and
    of its settlement)."""
    return at.astimezone(BILL_ZONES.get(channel, UTC)).date()


def reconciliation_workflow_id(channel: str, day: date) -> str:
    return f"reconciliation-{channel}-{day.isoformat()}"


def run_id(channel: str, day: date) -> str:
    return f"{channel}:{day.isoformat()}"


def exception_id(
    channel: str, day: date, kind: DiscrepancyType, line_kind: str | None, reference: str
) -> str:
    """Derived from what it is about, so a run repeated records each exception once."""
    key = f"{channel}\n{day.isoformat()}\n{kind.value}\n{line_kind or ''}\n{reference}"
    return f"rex_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


class Discrepancy(BaseModel):
    """One difference, with both sides' figures (None: that side has nothing)."""

    model_config = ConfigDict(frozen=True)

    type: DiscrepancyType
    line_kind: BillLineKind | None = None
    reference: str = ""  # our payment reference or refund id; "" for the whole bill
    order_id: str | None = None
    currency: str | None = None
    ours_amount: int | None = None
    theirs_amount: int | None = None
    ours_fee: int | None = None
    theirs_fee: int | None = None
    ours_status: str | None = None
    channel_txn_id: str | None = None  # the channel's id of the transaction
    detail: str = ""


def auto_action(discrepancy: Discrepancy, order_known: bool) -> AutoAction | None:
    """What the worker may do about it by itself; None: it waits for an operator.

    Only what a channel query can settle is automatic, and only towards the channel's
    truth: a payment it took that we missed (the saga decides whether that pays the order
    or is refunded as late), and a refund we still think pending. A payment we have and
    the channel does not, differing amounts or fees, or a refund we think failed that the
    channel paid, mean money may be where it should not be: an operator decides.
    """
    kind, line = discrepancy.type, discrepancy.line_kind
    missed = kind in (DiscrepancyType.MISSING_HERE, DiscrepancyType.STATUS_MISMATCH)
    if line == BillLineKind.PAYMENT and order_known and missed:
        return AutoAction.DELIVER_PAYMENT
    pending = kind == DiscrepancyType.STATUS_MISMATCH and discrepancy.ours_status == "pending"
    if line == BillLineKind.REFUND and pending:
        return AutoAction.REFRESH_REFUND
    return None


# The accounts an operator may adjust against `adjustments:{exception type}`: the ones
# a bill speaks about (what the channel holds, its fees, our bank) and the parties' own
# balances that a correction may owe or give back to. Accounts that hold money in
# transit (pending, in flight, late payments) follow their own entries only.
ADJUSTABLE_ACCOUNTS = frozenset(
    {
        AccountKind.CHANNEL_CLEARING,
        AccountKind.CHANNEL_FEE,
        AccountKind.BANK,
        AccountKind.PLATFORM_COMMISSION,
        AccountKind.MERCHANT_AVAILABLE,
    }
)


class ResolutionRefused(ValueError):
    """An operator's resolution breaks a rule: nothing is changed."""

    def __init__(self, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


def adjustment_postings(
    kind: DiscrepancyType, account: AccountKind, owner: str, currency: str, amount: int
) -> list[PostingLine]:
    """The adjusting entry: `amount` raises (> 0) or lowers (< 0) the named account's
    balance as its holder reads it; `adjustments:{exception type}` takes the other side.

    Raises ResolutionRefused for an account operators may not adjust, a zero amount or
    an owner that could not be part of an account id.
    """
    if account not in ADJUSTABLE_ACCOUNTS:
        raise ResolutionRefused("account_not_adjustable", f"{account} is not adjustable", "kind")
    if amount == 0:
        raise ResolutionRefused("amount_zero", "an adjustment moves money", "amount")
    if not owner or ":" in owner:
        raise ResolutionRefused("owner_invalid", "an owner is a non-empty id", "owner")
    debit = amount if account in DEBIT_NORMAL else -amount
    return [
        PostingLine(account_id(account, owner, currency), debit),
        PostingLine(account_id(AccountKind.ADJUSTMENTS, kind.value, currency), -debit),
    ]


def adjustment_entry_id(exception: str) -> str:
    return f"{exception}:adjustment"


# -- what the workflow and its activities pass each other --------------------------


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True)


class BillWait(_Message):
    """How long a run waits for its bill, and how often a corrupt one is fetched again."""

    first_retry_seconds: int = 60
    max_retry_seconds: int = 30 * 60
    deadline_seconds: int = 24 * 3600  # then the run records bill_not_ready
    corrupt_attempts: int = 5  # then the run records bill_corrupt


class ReconciliationInput(_Message):
    channel: str
    day: date
    wait: BillWait = BillWait()


class ReconciliationDay(_Message):
    """The daily Schedule's run: `day` (None: the day before the scheduled time) of each
    channel."""

    channels: tuple[str, ...]
    day: date | None = None
    wait: BillWait = BillWait()


class ChannelDay(_Message):
    channel: str
    day: date


class RunFinish(_Message):
    channel: str
    day: date
    bill_lines: int


class BillFetched(_Message):
    path: str  # where the worker keeps the downloaded bill
    lines: int


class BillProblem(_Message):
    """A bill-level exception to record (bill_not_ready, bill_corrupt)."""

    channel: str
    day: date
    type: DiscrepancyType
    detail: str


class MatchOutcome(_Message):
    counts: dict[str, int]  # exceptions found, by type (new and already recorded alike)
    auto: tuple[str, ...] = ()  # ids of the open exceptions the worker may resolve
    bill_lines: int = 0


class AutoOutcome(_Message):
    exception_id: str
    resolved: bool
    note: str


class RunResult(_Message):
    channel: str
    day: date
    status: RunStatus
    bill_lines: int
    exceptions: int
    counts: dict[str, int]
    auto_resolved: int
