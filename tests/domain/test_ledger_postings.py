"""The postings of money that sits at a channel: late payments, compensation, sweeps.

Each story posts its builders' entries onto balances kept here (normal balances, as the
ledger shows them) and checks where the money ends up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

import pytest

from domain.ledger import (
    AccountKind,
    PostingLine,
    account_id,
    account_parts,
    channel_sweep_postings,
    is_balanced,
    late_payment_received_postings,
    late_payment_refunded_postings,
    normal_balance,
    refund_complete_postings,
    refund_reserve_postings,
    settlement_postings,
    unsettled_refund_postings,
)
from domain.split import split_payment

CLEARING = account_id(AccountKind.CHANNEL_CLEARING, "alipay", "CNY")
LATE = account_id(AccountKind.LATE_PAYMENTS, "alipay", "CNY")
IN_FLIGHT = account_id(AccountKind.REFUNDS_IN_FLIGHT, "alipay", "CNY")
FEE = account_id(AccountKind.CHANNEL_FEE, "alipay", "CNY")
BANK = account_id(AccountKind.BANK, "platform", "CNY")
PENDING = account_id(AccountKind.MERCHANT_PENDING, "mer_1", "CNY")


class Books:
    def __init__(self) -> None:
        self.debits: dict[str, int] = defaultdict(int)

    def post(self, postings: Sequence[PostingLine]) -> None:
        assert postings and is_balanced(postings)
        for posting in postings:
            self.debits[posting.account] += posting.amount

    def balance(self, account: str) -> int:
        return normal_balance(account_parts(account)[0], self.debits[account])

    def nonzero(self) -> dict[str, int]:
        return {a: self.balance(a) for a in self.debits if self.debits[a]}


def test_a_late_payment_is_owed_while_the_channel_holds_it_and_gone_once_refunded() -> None:
    books = Books()
    books.post(late_payment_received_postings("alipay", "CNY", 1999))
    assert books.nonzero() == {CLEARING: 1999, LATE: 1999}
    books.post(late_payment_refunded_postings("alipay", "CNY", 1999))
    assert books.nonzero() == {}


def test_compensation_moves_the_split_into_flight_and_out_of_clearing_on_confirmation() -> None:
    split = split_payment(10000, Decimal("0.006"), Decimal("0.05"))
    books = Books()
    books.post(settlement_postings("alipay", "mer_1", "CNY", split))
    books.post(refund_reserve_postings("alipay", "mer_1", "CNY", split, released=False))
    assert books.nonzero() == {CLEARING: 10000, IN_FLIGHT: 10000}  # the channel still has it
    books.post(refund_complete_postings("alipay", "CNY", 10000))
    assert books.nonzero() == {}


def test_an_unsettled_payment_given_back_passes_through_clearing_and_flight() -> None:
    books = Books()
    books.post(unsettled_refund_postings("alipay", "CNY", 500))
    assert books.nonzero() == {CLEARING: 500, IN_FLIGHT: 500}
    books.post(refund_complete_postings("alipay", "CNY", 500))
    assert books.nonzero() == {}


def test_a_sweep_empties_the_days_clearing_into_the_bank_and_settles_the_fee() -> None:
    paid = [split_payment(amount, Decimal("0.006"), Decimal("0")) for amount in (10000, 2500)]
    books = Books()
    for split in paid:
        books.post(settlement_postings("alipay", "mer_1", "CNY", split))
    books.post(refund_reserve_postings("alipay", "mer_1", "CNY", paid[1], released=False))
    books.post(refund_complete_postings("alipay", "CNY", 2500))
    fees = paid[0].channel_fee_amount  # the refunded payment's fee came back with it
    books.post(channel_sweep_postings("alipay", "CNY", gross=12500, fees=fees, refunds=2500))
    assert books.balance(CLEARING) == 0
    assert books.balance(FEE) == 0
    assert books.balance(BANK) == 10000 - fees == 9940
    assert books.balance(PENDING) == paid[0].merchant_net_amount


def test_a_day_of_refunds_only_is_taken_from_the_bank() -> None:
    postings = channel_sweep_postings("card", "CNY", gross=0, fees=-29, refunds=1000)
    bank = account_id(AccountKind.BANK, "platform", "CNY")
    assert is_balanced(postings)
    assert dict(postings)[bank] == -971  # the channel returned its fee on the refund


@pytest.mark.parametrize("amount", [1, 999_999])
def test_late_payment_entries_balance_and_mirror_each_other(amount: int) -> None:
    received = late_payment_received_postings("card", "USD", amount)
    refunded = late_payment_refunded_postings("card", "USD", amount)
    assert is_balanced(received) and is_balanced(refunded)
    assert sorted((a, -m) for a, m in received) == sorted(refunded)
