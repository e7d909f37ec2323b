"""Reconciliation's rules: which day a bill covers, what the worker may settle by itself,
and the adjusting entry an operator's resolution posts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.bills import BillLineKind
from domain.ledger import AccountKind, is_balanced
from domain.reconciliation import (
    AutoAction,
    Discrepancy,
    DiscrepancyType,
    ResolutionRefused,
    adjustment_postings,
    auto_action,
    channel_day,
    day_window,
    exception_id,
)


def test_the_wallets_bills_cover_a_day_of_china_time_and_the_cards_a_day_of_utc() -> None:
    day = date(2026, 11, 29)
    assert day_window("alipay", day) == (
        datetime(2026, 11, 28, 16, tzinfo=UTC),
        datetime(2026, 11, 29, 16, tzinfo=UTC),
    )
    assert day_window("wechatpay", day) == day_window("alipay", day)
    assert day_window("card", day) == (
        datetime(2026, 11, 29, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize("channel", ["alipay", "wechatpay", "card"])
def test_an_instants_channel_day_is_the_day_whose_window_holds_it(channel: str) -> None:
    """The one definition both ways: what a sweep or a bill takes as an instant's day."""
    for hour in range(0, 48, 5):
        instant = datetime(2026, 11, 28, tzinfo=UTC) + timedelta(hours=hour, minutes=59)
        start, end = day_window(channel, channel_day(channel, instant))
        assert start <= instant < end
    evening = datetime(2026, 11, 29, 16, tzinfo=UTC)  # midnight in Beijing
    expected = date(2026, 11, 29) if channel == "card" else date(2026, 11, 30)
    assert channel_day(channel, evening) == expected


def _found(
    kind: DiscrepancyType, line: BillLineKind | None, status: str | None = None
) -> Discrepancy:
    return Discrepancy(type=kind, line_kind=line, reference="ord_1", ours_status=status)


@pytest.mark.parametrize(
    ("kind", "line", "status", "known", "action"),
    [
        # A payment the channel took that we missed goes to its saga (or back, if late).
        (
            DiscrepancyType.MISSING_HERE,
            BillLineKind.PAYMENT,
            None,
            True,
            AutoAction.DELIVER_PAYMENT,
        ),
        (
            DiscrepancyType.STATUS_MISMATCH,
            BillLineKind.PAYMENT,
            "pending",
            True,
            AutoAction.DELIVER_PAYMENT,
        ),
        (
            DiscrepancyType.STATUS_MISMATCH,
            BillLineKind.PAYMENT,
            "closed",
            True,
            AutoAction.DELIVER_PAYMENT,
        ),
        # ... but for no order of ours, nobody can take it: an operator decides.
        (DiscrepancyType.MISSING_HERE, BillLineKind.PAYMENT, None, False, None),
        # A refund we think pending is refreshed; one we think failed is an operator's.
        (
            DiscrepancyType.STATUS_MISMATCH,
            BillLineKind.REFUND,
            "pending",
            True,
            AutoAction.REFRESH_REFUND,
        ),
        (DiscrepancyType.STATUS_MISMATCH, BillLineKind.REFUND, "failed", True, None),
        (DiscrepancyType.MISSING_HERE, BillLineKind.REFUND, None, True, None),
        (DiscrepancyType.MISSING_THERE, BillLineKind.PAYMENT, "paid", True, None),
        (DiscrepancyType.AMOUNT_MISMATCH, BillLineKind.PAYMENT, "paid", True, None),
        (DiscrepancyType.FEE_MISMATCH, BillLineKind.PAYMENT, "paid", True, None),
        (DiscrepancyType.REFUND_MISSING, BillLineKind.REFUND, "succeeded", True, None),
        (DiscrepancyType.DUPLICATE_LINE, BillLineKind.PAYMENT, None, True, None),
        (DiscrepancyType.BILL_NOT_READY, None, None, False, None),
        (DiscrepancyType.BILL_CORRUPT, None, None, False, None),
    ],
)
def test_only_what_a_channel_query_settles_is_settled_automatically(
    kind: DiscrepancyType,
    line: BillLineKind | None,
    status: str | None,
    known: bool,
    action: AutoAction | None,
) -> None:
    assert auto_action(_found(kind, line, status), known) == action


def test_an_adjustment_balances_against_the_adjustments_of_its_type() -> None:
    raised = adjustment_postings(
        DiscrepancyType.AMOUNT_MISMATCH, AccountKind.CHANNEL_CLEARING, "alipay", "CNY", 100
    )
    assert raised == [
        ("channel_clearing:alipay:CNY", 100),  # an asset: raised by a debit
        ("adjustments:amount_mismatch:CNY", -100),
    ]
    lowered = adjustment_postings(
        DiscrepancyType.FEE_MISMATCH, AccountKind.CHANNEL_FEE, "alipay", "CNY", -3
    )
    assert lowered == [("channel_fee:alipay:CNY", 3), ("adjustments:fee_mismatch:CNY", -3)]
    assert is_balanced(raised) and is_balanced(lowered)


@pytest.mark.parametrize(
    ("account", "owner", "amount", "code"),
    [
        (AccountKind.MERCHANT_PENDING, "mer_1", 10, "account_not_adjustable"),
        (AccountKind.REFUNDS_IN_FLIGHT, "alipay", 10, "account_not_adjustable"),
        (AccountKind.CHANNEL_CLEARING, "alipay", 0, "amount_zero"),
        (AccountKind.CHANNEL_CLEARING, "ali:pay", 10, "owner_invalid"),
    ],
)
def test_an_adjustment_that_breaks_a_rule_is_refused(
    account: AccountKind, owner: str, amount: int, code: str
) -> None:
    with pytest.raises(ResolutionRefused) as refused:
        adjustment_postings(DiscrepancyType.MISSING_THERE, account, owner, "CNY", amount)
    assert refused.value.code == code


def test_an_exception_is_named_by_what_it_is_about() -> None:
    day = date(2026, 11, 29)
    one = exception_id("alipay", day, DiscrepancyType.MISSING_THERE, "payment", "ord_1")
    assert one == exception_id("alipay", day, DiscrepancyType.MISSING_THERE, "payment", "ord_1")
    assert one != exception_id("wechatpay", day, DiscrepancyType.MISSING_THERE, "payment", "ord_1")
    assert one != exception_id("alipay", day, DiscrepancyType.AMOUNT_MISMATCH, "payment", "ord_1")
