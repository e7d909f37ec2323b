"""What the bill tests share: paying and refunding through our adapters, the bill controls,
and the lines we expect a channel to bill for what we did.

A bill day is the channel's (Beijing for Alipay and WeChat Pay, UTC for the card
gateway). Tests pay today and publish today's bill early through the control API; a
test that runs across the bill day's midnight cannot say which bill its payments are
on, and skips (`same_day`). Days in the past that nobody paid on are empty bills:
each test that needs one takes its own random day, so plants never meet.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.base import ChannelAdapter, ChannelName, CreatePaymentRequest, RefundRequest
from channels.bills import BillClient
from domain.bills import BillLine, BillLineKind
from domain.money import apply_rate, prorate
from tests.channels.conftest import CONTROL_HEADERS, Control

CURRENCY = {ChannelName.ALIPAY: "CNY", ChannelName.WECHATPAY: "CNY", ChannelName.CARD: "USD"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def bill_today(zone: tzinfo) -> date:
    return datetime.now(zone).date()


def same_day(zone: tzinfo, day: date) -> None:
    if bill_today(zone) != day:
        pytest.skip("the test ran across the bill day's midnight")


def empty_day() -> date:
    """A day in the past nobody paid on, this test's own."""
    return date(2001, 1, 1) + timedelta(days=secrets.randbelow(7000))


@dataclass(frozen=True)
class Key:
    """A line as reconciliation compares it."""

    kind: BillLineKind
    reference: str
    order_reference: str
    amount: int
    fee: int
    currency: str


def key(line: BillLine) -> Key:
    return Key(
        line.kind, line.reference, line.order_reference, line.amount, line.fee, line.currency
    )


def ours(lines: Iterable[BillLine], references: set[str]) -> Counter[Key]:
    """The bill's lines about `references` (payments and refunds), counted."""
    return Counter(key(line) for line in lines if line.order_reference in references)


class BillDesk:
    """The sandbox's bill controls, and what a test did that a bill should show."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, channel: ChannelName) -> None:
        self._client = client
        self._base = f"{base_url}/control/bills/{channel.value}"
        self.channel = channel

    async def publish(self, day: date) -> None:
        response = await self._client.post(f"{self._base}/{day}/publish", headers=CONTROL_HEADERS)
        response.raise_for_status()

    async def plant(self, day: date, **body: Any) -> dict[str, Any]:
        response = await self._client.post(
            f"{self._base}/{day}/discrepancies", json=body, headers=CONTROL_HEADERS
        )
        response.raise_for_status()
        planted: dict[str, Any] = response.json()
        return planted

    async def planted(self, day: date) -> list[dict[str, Any]]:
        response = await self._client.get(
            f"{self._base}/{day}/discrepancies", headers=CONTROL_HEADERS
        )
        response.raise_for_status()
        listed: list[dict[str, Any]] = response.json()
        return listed


class Shop:
    """Our side: payments and refunds made through the channel's adapter, as the saga would,
    and the lines each must put on the channel's bill (`expected`)."""

    def __init__(
        self, adapter: ChannelAdapter, control: Control, notify_url: str, fee_rate: Decimal
    ) -> None:
        self.adapter = adapter
        self.control = control
        self.notify_url = notify_url
        self.fee_rate = fee_rate
        self.currency = CURRENCY[adapter.name]
        self.expected: Counter[Key] = Counter()
        self.references: set[str] = set()
        self._fees: dict[str, tuple[int, int]] = {}  # reference -> (fee left, amount left)

    async def create(self, amount: int) -> str:
        reference = new_id("ord")
        await self.adapter.create_payment(
            CreatePaymentRequest(
                order_id=reference, merchant_id="shop_1", amount=amount,
                currency=self.currency, description="乌龙茶 Oolong, 2 x 250g",
                notify_url=self.notify_url,
            )
        )  # fmt: skip
        self.references.add(reference)
        return reference

    async def pay(self, amount: int) -> str:
        reference = await self.create(amount)
        await self.control.pay(reference)
        fee = apply_rate(amount, self.fee_rate)
        self._fees[reference] = (fee, amount)
        self.expected[
            Key(BillLineKind.PAYMENT, reference, reference, amount, fee, self.currency)
        ] += 1
        return reference

    async def refund(self, reference: str, amount: int) -> str:
        refund_id = new_id("rf")
        await self.adapter.refund(
            RefundRequest(
                refund_id=refund_id, order_id=reference, amount=amount,
                currency=self.currency, reason="broken",
            )
        )  # fmt: skip
        fee_left, amount_left = self._fees[reference]
        fee = prorate(amount, fee_left, amount_left)
        self._fees[reference] = (fee_left - fee, amount_left - amount)
        self.expected[
            Key(BillLineKind.REFUND, refund_id, reference, amount, fee, self.currency)
        ] += 1
        return refund_id

    def expected_line(self, kind: BillLineKind, reference: str) -> Key:
        return next(k for k in self.expected if (k.kind, k.reference) == (kind, reference))


def downloaded_lines(bills: BillClient, path: Path) -> list[BillLine]:
    return list(bills.lines(path))
