"""The card gateway's daily bill: its itemized balance-transaction report for a UTC day.

    download   POST /v1/reporting/report_runs (`channels.card.bill_wire`) for the day;
               400 data_not_available is BillNotReady. Then GET the result file's
               contents (bearer auth), streamed to disk; a file that has not the size
               the run stated is BillCorrupt
    lines      the CSV, streamed: `charge` -> a payment (reference: our order's payment
               reference from `payment_metadata[order_id]`), `refund` -> a refund
               (`refund_metadata[refund_id]`), `payout` -> a sweep to our bank
    summary    the report states no totals of its own (Stripe's itemized reports do
               not): the summary is the sum of its lines, so the check is the parse

Amounts are minor units already; a refund's amount and fee are negative in the file
(money going back, fee given back) and positive in our lines. `created` is unix
seconds. The report run has no side effect, so each attempt sends a fresh
Idempotency-Key: a key reused after "not available" would replay that answer.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

import httpx

from channels.base import ChannelName
from channels.bill_files import bill_file_name, day_in_name, download_to, integer
from channels.card import bill_wire
from channels.card.transport import CardApi
from channels.errors import ChannelRejected
from domain.bills import BillCorrupt, BillLine, BillLineKind, BillNotReady, BillSummary
from settings import CardSettings

_KINDS = {
    "charge": BillLineKind.PAYMENT,
    "refund": BillLineKind.REFUND,
    "payout": BillLineKind.SWEEP,
}


class CardBillClient:
    channel = ChannelName.CARD
    zone: tzinfo = UTC

    def __init__(self, config: CardSettings, base_url: str, client: httpx.AsyncClient) -> None:
        self._base_url = base_url.rstrip("/")
        self._api = CardApi(base_url, config.secret_key.get_secret_value(), client)
        self._auth = {"Authorization": f"Bearer {config.secret_key.get_secret_value()}"}
        self._client = client

    def __repr__(self) -> str:  # keep the key out of any accidental repr
        return f"CardBillClient(base_url={self._base_url!r})"

    async def download(self, day: date, directory: Path) -> Path:
        start = datetime.combine(day, time(), UTC)
        form = {
            "report_type": bill_wire.REPORT_TYPE,
            "parameters[interval_start]": str(int(start.timestamp())),
            "parameters[interval_end]": str(int((start + timedelta(days=1)).timestamp())),
        }
        try:
            run = await self._api.post(
                "/v1/reporting/report_runs", bill_wire.ReportRun, form, secrets.token_hex(16)
            )
        except ChannelRejected as refusal:
            if refusal.code == bill_wire.DATA_NOT_AVAILABLE:
                raise BillNotReady(f"card report of {day}") from None
            raise
        if run.status != "succeeded" or run.result is None:
            raise BillNotReady(f"card report of {day} is {run.status}")
        target = directory / bill_file_name("card", "balance", day, ".csv")
        url = f"{self._base_url}/v1/files/{run.result.id}/contents"
        downloaded = await download_to(self._client, "card report file", url, target, self._auth)
        if downloaded.size != run.result.size:
            target.unlink()  # no file left that a reader could take for the bill
            raise BillCorrupt(
                f"{target.name}: {downloaded.size} bytes, the run said {run.result.size}"
            )
        return target

    def lines(self, path: Path) -> Iterator[BillLine]:
        with path.open(encoding="utf-8", newline="") as file:
            for row in csv.DictReader(file):
                yield _line(row)

    def summary(self, path: Path) -> BillSummary:
        count = payments = refunds = fees = 0
        for line in self.lines(path):
            count += 1
            if line.kind is BillLineKind.PAYMENT:
                payments += line.amount
                fees += line.fee
            elif line.kind is BillLineKind.REFUND:
                refunds += line.amount
                fees -= line.fee
        return BillSummary(
            day=day_in_name(path), lines=count, payments=payments, refunds=refunds, fees=fees
        )


def _line(row: dict[str, str]) -> BillLine:
    kind = _KINDS.get(row.get("type", ""))
    if kind is None:
        raise BillCorrupt(f"card report: unhandled type {row.get('type')!r}")
    try:
        amount, fee = integer(row["amount"], "amount"), integer(row["fee"], "fee")
        order_reference = row["payment_metadata[order_id]"]
        reference = {
            BillLineKind.PAYMENT: order_reference,
            BillLineKind.REFUND: row["refund_metadata[refund_id]"],
            BillLineKind.SWEEP: row["source"],
        }[kind]
        return BillLine(
            channel=ChannelName.CARD.value,
            kind=kind,
            reference=reference,
            channel_id=row["source"],
            order_reference="" if kind is BillLineKind.SWEEP else order_reference,
            currency=row["currency"].upper(),
            amount=abs(amount),
            fee=abs(fee),
            at=datetime.fromtimestamp(integer(row["created"], "created"), UTC),
        )
    except (KeyError, TypeError) as missing:
        raise BillCorrupt(f"card report: a row lacks {missing}") from None
