"""The card gateway's itemized balance-transaction report for one UTC day (CSV, minor units).

    id,type,reporting_category,source,amount,fee,net,currency,created,available_on,
    description,payment_metadata[order_id],refund_metadata[refund_id]

One row a balance transaction, as Stripe's Balance Transactions show them: a `charge`
(source: the charge, amount and fee positive) or a `refund` (source: the refund,
amount negative, the fee given back negative); `net` is amount - fee. Amounts are in
the currency's minor unit, `currency` lower-case, `created` unix seconds. Our
metadata comes back in the `payment_metadata[...]` / `refund_metadata[...]` columns,
as Stripe's itemized reports offer them. The report states no totals of its own.
A `payout` row (source: the transfer, amount and net negative: money leaving the
balance for our bank) is the gateway's settlement of the report's day
(`sandbox.sweeps`): listed once the day is settled (T+2), so a report downloaded
before that has none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sandbox.bill_entries import BillEntry
from sandbox.bill_formats._text import csv_text
from sandbox.card_views import refund_object_id
from sandbox.sweeps import SweepRecord

COLUMNS = (
    "id", "type", "reporting_category", "source", "amount", "fee", "net", "currency",
    "created", "available_on", "description", "payment_metadata[order_id]",
    "refund_metadata[refund_id]",
)  # fmt: skip
_AVAILABLE_AFTER_S = 2 * 24 * 3600  # funds become available two days later


def render(entries: Sequence[BillEntry], payouts: Sequence[SweepRecord] = ()) -> bytes:
    """The report: its charges and refunds, then the day's payouts (none of nothing)."""
    rows = [_row(e) for e in entries] + [_payout(p) for p in payouts if p.net > 0]
    return csv_text([COLUMNS, *rows]).encode("utf-8")


def _payout(sweep: SweepRecord) -> list[str]:
    return [
        "txn_" + hashlib.sha256(f"payout:{sweep.transfer_id}".encode()).hexdigest()[:24],
        "payout", "payout", sweep.transfer_id, str(-sweep.net), "0", str(-sweep.net),
        sweep.currency.lower(), str(int(sweep.credited_at)), str(int(sweep.credited_at)),
        "PAYOUT", "", "",
    ]  # fmt: skip


def _row(entry: BillEntry) -> list[str]:
    refund = entry.kind == "refund"
    sign = -1 if refund else 1
    source = refund_object_id(entry.reference) if refund else entry.trade_no
    amount, fee = sign * entry.amount, sign * entry.fee
    return [
        "txn_" + hashlib.sha256(f"{entry.kind}:{entry.reference}".encode()).hexdigest()[:24],
        entry.kind if refund else "charge",
        "refund" if refund else "charge",
        source, str(amount), str(fee), str(amount - fee),
        entry.currency.lower(), str(int(entry.at)), str(int(entry.at) + _AVAILABLE_AFTER_S),
        entry.description,
        entry.order_reference,
        entry.reference if refund else "",
    ]  # fmt: skip
