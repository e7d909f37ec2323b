"""A test double of OUR bill interface (activities.reconciliation_records.BillSource):
bills a test writes as JSON lines, one file per channel-day, its summary on the first line.

`lines_from_records` derives a day's bill from what really happened, our records of
the sandbox's payments and refunds, so a test plants a discrepancy by changing, adding
or leaving out a line. The channels' own bill clients (channels/bills.py) replace this
in the product; the activities never know which they have.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from db.tables import Order, Payment, Refund
from db.times import as_utc
from domain.bills import BillCorrupt, BillLine, BillLineKind, BillNotReady, BillSummary
from domain.keys import stored_payment_reference
from domain.reconciliation import day_window


@dataclass
class JsonLinesBills:
    """One channel's bills from `root/{channel}-{day}.jsonl`; none there: not ready."""

    channel: str
    root: Path

    async def download(self, day: date, directory: Path) -> Path:
        published = self.root / f"{self.channel}-{day.isoformat()}.jsonl"
        if not published.exists():
            raise BillNotReady(f"no {self.channel} bill for {day}")
        target = directory / published.name
        shutil.copyfile(published, target)
        return target

    def lines(self, path: Path) -> Iterator[BillLine]:
        with path.open(encoding="utf-8") as bill:
            next(bill)  # the summary
            for raw in bill:
                fields = json.loads(raw)
                fields["kind"] = BillLineKind(fields["kind"])
                fields["at"] = datetime.fromisoformat(fields["at"])
                yield BillLine(**fields)

    def summary(self, path: Path) -> BillSummary:
        with path.open(encoding="utf-8") as bill:
            first = json.loads(next(bill))
        if first.get("corrupt"):
            raise BillCorrupt("the stated hash does not match")
        first["day"] = date.fromisoformat(first["day"])
        return BillSummary(**first)


def publish_bill(
    root: Path,
    channel: str,
    day: date,
    lines: Sequence[BillLine],
    *,
    summary_lines: int | None = None,
) -> None:
    """Write the day's bill; `summary_lines` other than the true count makes it corrupt."""
    payments = sum(line.amount for line in lines if line.kind == BillLineKind.PAYMENT)
    refunds = sum(line.amount for line in lines if line.kind == BillLineKind.REFUND)
    fees = sum(line.fee for line in lines if line.kind == BillLineKind.PAYMENT)
    summary = {
        "day": day.isoformat(),
        "lines": len(lines) if summary_lines is None else summary_lines,
        "payments": payments,
        "refunds": refunds,
        "fees": fees,
    }
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{channel}-{day.isoformat()}.jsonl").open("w", encoding="utf-8") as out:
        out.write(json.dumps(summary) + "\n")
        for line in lines:
            fields = asdict(line)
            fields["kind"] = line.kind.value
            fields["at"] = line.at.isoformat()
            out.write(json.dumps(fields) + "\n")


def lines_from_records(engine: Engine, channel: str, day: date) -> list[BillLine]:
    """The bill the channel would publish for the day, read from our records: every paid
    payment at its fee, and every succeeded refund."""
    start, end = day_window(channel, day)
    lines = []
    with Session(engine) as session:
        paid = session.exec(
            select(Payment, Order)
            .join(Order, col(Order.id) == Payment.order_id)
            .where(Payment.channel == channel, Payment.status == "paid", Payment.amount > 0)
            .where(col(Payment.paid_at) >= start, col(Payment.paid_at) < end)
        ).all()
        references = {}
        for payment, order in paid:
            reference = stored_payment_reference(
                payment.order_id, payment.attempt, payment.channel_payment_id
            )
            references[payment.order_id] = reference
            assert payment.paid_at is not None and payment.channel_txn_id is not None
            lines.append(
                BillLine(
                    channel=channel,
                    kind=BillLineKind.PAYMENT,
                    reference=reference,
                    channel_id=payment.channel_txn_id,
                    order_reference=reference,
                    currency=payment.currency,
                    amount=payment.amount,
                    fee=order.channel_fee_amount or 0,
                    at=as_utc(payment.paid_at),
                )
            )
        refunds = session.exec(
            select(Refund)
            .where(Refund.channel == channel, Refund.status == "succeeded")
            .where(col(Refund.updated_at) >= start, col(Refund.updated_at) < end)
        ).all()
        for refund in refunds:
            lines.append(
                BillLine(
                    channel=channel,
                    kind=BillLineKind.REFUND,
                    reference=refund.id,
                    channel_id=f"rf-{refund.id}",
                    order_reference=references.get(refund.order_id, refund.order_id),
                    currency=refund.currency,
                    amount=refund.amount,
                    fee=0,
                    at=as_utc(refund.updated_at),
                )
            )
    return lines
