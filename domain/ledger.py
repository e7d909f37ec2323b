"""Double-entry rules: which accounts a business event moves, and by how much.

A posting is (account, amount) with debits positive and credits negative; the
postings of one entry always sum to zero. Accounts are named
`kind:owner` so that a later ledger can key them by (owner, kind, currency).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from domain.split import Split


class PostingLine(NamedTuple):
    account: str
    amount: int  # debit > 0, credit < 0


def channel_clearing_account(channel: str) -> str:
    return f"channel_clearing:{channel}"


def merchant_payable_account(merchant_id: str) -> str:
    return f"merchant_payable:{merchant_id}"


def channel_fee_account(channel: str) -> str:
    return f"channel_fee:{channel}"


PLATFORM_COMMISSION_ACCOUNT = "platform_commission:platform"


def settlement_postings(channel: str, merchant_id: str, split: Split) -> list[PostingLine]:
    """Channel clearing is debited the payable; merchant, platform and channel are credited."""
    lines = [
        PostingLine(channel_clearing_account(channel), split.payable_amount),
        PostingLine(merchant_payable_account(merchant_id), -split.merchant_net_amount),
        PostingLine(PLATFORM_COMMISSION_ACCOUNT, -split.commission_amount),
        PostingLine(channel_fee_account(channel), -split.channel_fee_amount),
    ]
    return [line for line in lines if line.amount != 0]


def reversal_postings(postings: Sequence[PostingLine]) -> list[PostingLine]:
    return [PostingLine(p.account, -p.amount) for p in postings]


def is_balanced(postings: Sequence[PostingLine]) -> bool:
    return sum(p.amount for p in postings) == 0
