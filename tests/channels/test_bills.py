"""Each channel's daily bill, both sides, over real HTTP: the sandbox bills what it recorded,
in the channel's own format and with its own checks, and our bill client reads it back.

Payments and refunds are made through our adapters as the saga makes them; the
buyer pays through the sandbox's controls. Every test runs for each channel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from channels.base import ChannelAdapter, ChannelName
from channels.bills import BillClient, bill_client, bill_day_window
from domain.bills import BillCorrupt, BillLineKind, BillNotReady
from tests.channels.bill_helpers import (
    BillDesk,
    Key,
    Shop,
    bill_today,
    empty_day,
    key,
    ours,
    same_day,
)
from tests.channels.conftest import CONTROL_HEADERS, Control, Inbox, RunningSandbox

pytestmark = pytest.mark.parametrize("channel", list(ChannelName), ids=str)


@pytest_asyncio.fixture
async def bills(
    channel: ChannelName, sandbox: RunningSandbox, client: httpx.AsyncClient
) -> AsyncIterator[BillClient]:
    yield bill_client(channel, sandbox.settings(), client)


@pytest.fixture
def desk(channel: ChannelName, sandbox: RunningSandbox, client: httpx.AsyncClient) -> BillDesk:
    return BillDesk(client, sandbox.base_url, channel)


@pytest.fixture
def shop(
    channel: ChannelName,
    channels: dict[str, ChannelAdapter],
    control: Control,
    inbox: Inbox,
    sandbox: RunningSandbox,
) -> Shop:
    rate = sandbox.settings().channel_fee_rates[channel.value]
    return Shop(channels[channel.value], control, inbox.url, rate)


async def test_a_days_payments_and_refunds_are_billed_as_we_recorded_them(
    channel: ChannelName, bills: BillClient, desk: BillDesk, shop: Shop, tmp_path: Path
) -> None:
    day = bill_today(bills.zone)
    started = datetime.now(UTC).replace(microsecond=0)
    tea = await shop.pay(3998)
    await shop.pay(1001)
    await shop.refund(tea, 1000)  # two partial refunds: each gives back its share of the fee
    await shop.refund(tea, 999)
    same_day(bills.zone, day)
    await desk.publish(day)

    path = await bills.download(day, tmp_path)
    lines = bills.lines(path)
    assert iter(lines) is lines  # read as it comes, not a list held whole
    billed = list(lines)

    assert ours(billed, shop.references) == shop.expected
    paid = await shop.adapter.query_payment(tea)
    (tea_line,) = [ln for ln in billed if ln.kind is BillLineKind.PAYMENT and ln.reference == tea]
    assert tea_line.channel == channel.value
    assert tea_line.channel_id == paid.channel_txn_id  # what our payment record keeps
    start, end = bill_day_window(bills.zone, day)
    assert started - timedelta(seconds=1) <= tea_line.at <= datetime.now(UTC)
    assert start <= tea_line.at < end
    # The bill's own totals are those of its lines (other tests' payments included).
    summary = bills.summary(path)
    assert summary.day == day
    assert summary.lines == len(billed)
    assert summary.payments == sum(ln.amount for ln in billed if ln.kind is BillLineKind.PAYMENT)
    assert summary.refunds == sum(ln.amount for ln in billed if ln.kind is BillLineKind.REFUND)
    assert summary.fees == sum(
        ln.fee if ln.kind is BillLineKind.PAYMENT else -ln.fee for ln in billed
    )


async def test_each_planted_discrepancy_shows_as_exactly_that_difference(
    bills: BillClient, desk: BillDesk, shop: Shop, tmp_path: Path
) -> None:
    day = bill_today(bills.zone)
    changed, dropped, feed = await shop.pay(5000), await shop.pay(2000), await shop.pay(3000)
    refunded, doubled = await shop.pay(4000), await shop.pay(6000)
    dropped_refund = await shop.refund(refunded, 1500)
    doubled_refund = await shop.refund(doubled, 6000)
    closed = await shop.create(777)
    await shop.adapter.close_payment(closed)
    same_day(bills.zone, day)
    await desk.publish(day)

    planted = [
        await desk.plant(day, kind="amount_changed", reference=changed, amount=4999),
        await desk.plant(day, kind="missing_payment", reference=dropped),
        await desk.plant(day, kind="fee_changed", reference=feed, fee=99),
        await desk.plant(day, kind="missing_refund", reference=dropped_refund),
        await desk.plant(day, kind="duplicate_line", reference=doubled_refund, line="refund"),
        await desk.plant(day, kind="paid_there", reference=closed),
        await desk.plant(day, kind="unknown_payment", amount=1234),
    ]
    assert await desk.planted(day) == planted  # kept, so a reconciliation can be checked
    unknown = planted[-1]["reference"]

    path = await bills.download(day, tmp_path)
    billed = list(bills.lines(path))

    expected = Counter(shop.expected)
    was = shop.expected_line(BillLineKind.PAYMENT, changed)
    expected[was] -= 1
    expected[Key(was.kind, changed, changed, 4999, was.fee, was.currency)] += 1
    expected[shop.expected_line(BillLineKind.PAYMENT, dropped)] -= 1
    was = shop.expected_line(BillLineKind.PAYMENT, feed)
    expected[was] -= 1
    expected[Key(was.kind, feed, feed, was.amount, 99, was.currency)] += 1
    expected[shop.expected_line(BillLineKind.REFUND, dropped_refund)] -= 1
    expected[shop.expected_line(BillLineKind.REFUND, doubled_refund)] += 1
    there = planted[5]
    expected[Key(BillLineKind.PAYMENT, closed, closed, 777, there["fee"], shop.currency)] += 1
    assert ours(billed, shop.references) == +expected
    (stranger,) = [key(ln) for ln in billed if ln.reference == unknown]
    assert (stranger.kind, stranger.amount, stranger.fee) == (
        BillLineKind.PAYMENT,
        1234,
        planted[-1]["fee"],
    )
    summary = bills.summary(path)
    assert summary.lines == len(billed)  # the bill stays true to itself


async def test_an_empty_day_has_no_lines_and_zero_totals(bills: BillClient, tmp_path: Path) -> None:
    day = empty_day()
    path = await bills.download(day, tmp_path)
    assert list(bills.lines(path)) == []
    summary = bills.summary(path)
    assert (summary.day, summary.lines, summary.payments, summary.refunds, summary.fees) == (
        day,
        0,
        0,
        0,
        0,
    )


async def test_a_bill_not_published_yet_is_not_ready(
    bills: BillClient, desk: BillDesk, tmp_path: Path
) -> None:
    with pytest.raises(BillNotReady):  # the day has not ended
        await bills.download(bill_today(bills.zone) + timedelta(days=1), tmp_path)
    day = empty_day()
    await desk.plant(day, kind="not_ready")  # ended, but the channel is late
    with pytest.raises(BillNotReady):
        await bills.download(day, tmp_path)
    assert list(tmp_path.iterdir()) == []


async def test_a_file_that_fails_its_check_is_corrupt(
    bills: BillClient, desk: BillDesk, tmp_path: Path
) -> None:
    day = empty_day()
    await desk.plant(day, kind="unknown_payment")
    await desk.plant(day, kind="corrupt_file")
    with pytest.raises(BillCorrupt):
        await bills.download(day, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing left that a reader could take for the bill


async def test_the_bill_controls_want_the_sandbox_api_key(
    channel: ChannelName, sandbox: RunningSandbox, client: httpx.AsyncClient
) -> None:
    url = f"{sandbox.base_url}/control/bills/{channel.value}/{empty_day()}/discrepancies"
    refused = await client.post(url, json={"kind": "not_ready"})
    assert refused.status_code == 401
    missing = await client.post(
        url, json={"kind": "missing_payment", "reference": "ord_none"}, headers=CONTROL_HEADERS
    )
    assert missing.status_code == 404  # no such line that day: nothing planted
    listed = await client.get(url, headers=CONTROL_HEADERS)
    assert listed.json() == []
