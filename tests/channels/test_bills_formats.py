# ruff: noqa: RUF001  (Alipay's own text: full-width colons and commas)
"""Reading each channel's bill file, edge by edge: the files are the sandbox's renderings
of the channels' formats, read by our bill clients straight from disk (no server)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from channels.alipay.bills import AlipayBillClient
from channels.bill_files import bill_file_name
from channels.card.bills import CardBillClient
from channels.wechatpay.bills import WeChatPayBillClient
from domain.bills import BillCorrupt, BillLine, BillLineKind, BillSummary
from sandbox.bill_entries import BillEntry
from sandbox.bill_formats import alipay as alipay_format
from sandbox.bill_formats import card as card_format
from sandbox.bill_formats import wechatpay as wechatpay_format
from sandbox.card_views import refund_object_id
from sandbox.sweeps import SweepRecord
from sandbox.wechatpay_views import refund_id as wechat_refund_id
from settings import Settings
from tests.channels.conftest import _new_sandbox

DAY = date(2026, 11, 30)
PAID_AT = datetime(2026, 11, 30, 2, 15, 30, tzinfo=UTC)  # 10:15:30 in Beijing
REFUNDED_AT = datetime(2026, 11, 30, 9, 0, 0, tzinfo=UTC)
TEA = BillEntry(
    kind="payment", reference="ord_tea", order_reference="ord_tea", trade_no="txn_1",
    amount=3998, fee=24, currency="CNY", at=PAID_AT.timestamp(),
    description="乌龙茶, 特级 (Oolong)", merchant_id="shop_1", payment_amount=3998,
    created_at=PAID_AT.timestamp(),
)  # fmt: skip
TEA_REFUND = BillEntry(
    kind="refund", reference="rf_1", order_reference="ord_tea", trade_no="txn_1",
    amount=1000, fee=6, currency="CNY", at=REFUNDED_AT.timestamp(),
    description=TEA.description, merchant_id="shop_1", payment_amount=3998,
    created_at=PAID_AT.timestamp(),
)  # fmt: skip


PAYMENT, REFUND, SWEEP = BillLineKind.PAYMENT, BillLineKind.REFUND, BillLineKind.SWEEP


def _line(
    channel: str, kind: BillLineKind, reference: str, channel_id: str, amount: int, fee: int,
    at: datetime, order: str = "ord_tea",
) -> BillLine:  # fmt: skip
    return BillLine(channel, kind, reference, channel_id, order, "CNY", amount, fee, at)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return _new_sandbox().settings()  # keys only: no server is started


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:  # never used: these tests only read files
        yield client


def test_alipay_bill_is_gbk_with_header_and_summary_lines_around_its_rows(
    settings: Settings, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / bill_file_name("alipay", "trade", DAY, ".csv.zip")
    path.write_bytes(alipay_format.render([TEA, TEA_REFUND], "2088", DAY, REFUNDED_AT))
    with zipfile.ZipFile(path) as archive:
        (details,) = [n for n in archive.namelist() if n.endswith("_业务明细.csv")]
        raw = archive.read(details)
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert text.startswith("#支付宝业务明细查询\r\n#账号：[2088")
    assert "业务明细列表结束" in text and "#交易合计：1笔，商家实收：39.98元" in text
    assert "ord_tea\t," in text  # Alipay's tab after every value

    bills = AlipayBillClient(settings.alipay, "http://unused", http)
    assert list(bills.lines(path)) == [
        _line("alipay", PAYMENT, "ord_tea", "txn_1", 3998, 24, PAID_AT),
        _line("alipay", REFUND, "rf_1", "txn_1", 1000, 6, REFUNDED_AT),
    ]  # fmt: skip
    assert bills.summary(path) == BillSummary(DAY, lines=2, payments=3998, refunds=1000, fees=18)


def test_an_alipay_amount_finer_than_a_fen_is_corrupt(
    settings: Settings, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / bill_file_name("alipay", "trade", DAY, ".csv.zip")
    with zipfile.ZipFile(io.BytesIO(alipay_format.render([TEA], "2088", DAY, PAID_AT))) as src:
        members = {name: src.read(name) for name in src.namelist()}
    with zipfile.ZipFile(path, "w") as out:
        for name, content in members.items():
            out.writestr(name, content.replace(b"39.98\t", b"39.985\t", 1))
    bills = AlipayBillClient(settings.alipay, "http://unused", http)
    with pytest.raises(BillCorrupt):
        list(bills.lines(path))


def test_wechatpay_values_stand_behind_backticks_and_its_fees_have_five_places(
    settings: Settings, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / bill_file_name("wechatpay", "tradebill", DAY, ".csv")
    path.write_bytes(
        wechatpay_format.render(
            [TEA, TEA_REFUND], appid="wx1", mchid="1900", fee_rate=Decimal("0.006")
        )
    )
    header, payment, refund, totals_header, totals = path.read_text("utf-8").splitlines()
    assert header.startswith("交易时间,公众账号ID,商户号")
    assert payment.startswith("`2026-11-30 10:15:30,`wx1,`1900,")
    assert all(value.startswith("`") for value in next(csv.reader([payment])))
    assert "`0.24000,`0.6%" in payment and "`-0.06000" in refund
    assert totals_header.startswith("总交易单数,应结订单总金额,退款总金额")
    assert totals == "`2,`39.98,`10.00,`0.00,`0.18000,`39.98,`10.00"

    bills = WeChatPayBillClient(settings.wechatpay, "http://unused", http)
    refund_no = wechat_refund_id("rf_1")
    assert list(bills.lines(path)) == [
        _line("wechatpay", PAYMENT, "ord_tea", "txn_1", 3998, 24, PAID_AT),
        _line("wechatpay", REFUND, "rf_1", refund_no, 1000, 6, REFUNDED_AT),
    ]  # fmt: skip
    assert bills.summary(path) == BillSummary(DAY, lines=2, payments=3998, refunds=1000, fees=18)


def test_a_wechatpay_fee_stated_finer_than_a_fen_rounds_half_up(
    settings: Settings, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / bill_file_name("wechatpay", "tradebill", DAY, ".csv")
    text = wechatpay_format.render([TEA], appid="wx1", mchid="1900", fee_rate=Decimal("0.006"))
    path.write_bytes(text.replace(b"`0.24000", b"`0.23500", 1))
    bills = WeChatPayBillClient(settings.wechatpay, "http://unused", http)
    (line,) = bills.lines(path)
    assert line.fee == 24


def test_a_wechatpay_bill_cut_before_its_summary_is_corrupt(
    settings: Settings, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / bill_file_name("wechatpay", "tradebill", DAY, ".csv")
    text = wechatpay_format.render([TEA], appid="wx1", mchid="1900", fee_rate=Decimal("0.006"))
    path.write_bytes(text.split("总交易单数".encode())[0])
    bills = WeChatPayBillClient(settings.wechatpay, "http://unused", http)
    with pytest.raises(BillCorrupt):
        list(bills.lines(path))
    with pytest.raises(BillCorrupt):
        bills.summary(path)


def test_the_card_report_reads_charges_refunds_and_payouts_in_minor_units(
    settings: Settings, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / bill_file_name("card", "balance", DAY, ".csv")
    rendered = card_format.render([TEA, TEA_REFUND]).decode()
    payout = f"txn_po,payout,payout,po_1,-4000,0,-4000,cny,{int(REFUNDED_AT.timestamp())},,,,\r\n"
    path.write_text(rendered + payout, "utf-8")
    assert rendered.splitlines()[2].split(",")[4:7] == ["-1000", "-6", "-994"]

    bills = CardBillClient(settings.card, "http://unused", http)
    assert list(bills.lines(path)) == [
        _line("card", PAYMENT, "ord_tea", "txn_1", 3998, 24, PAID_AT),
        _line("card", REFUND, "rf_1", refund_object_id("rf_1"), 1000, 6, REFUNDED_AT),
        _line("card", SWEEP, "po_1", "po_1", 4000, 0, REFUNDED_AT, order=""),
    ]  # fmt: skip
    assert bills.summary(path) == BillSummary(DAY, lines=3, payments=3998, refunds=1000, fees=18)


def test_the_sandboxs_card_report_lists_the_days_payouts_as_sweeps(
    settings: Settings, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    path = tmp_path / bill_file_name("card", "balance", DAY, ".csv")
    payout = SweepRecord(
        transfer_id="sweep_card_20261130_CNY", channel="card", day=DAY.isoformat(),
        currency="CNY", gross=3998, fees=24, refunds=1000, net=2974, bank_reference="bank_1",
        credited_at=REFUNDED_AT.timestamp(),
    )  # fmt: skip
    nothing = replace(payout, transfer_id="sweep_card_20261130_USD", currency="USD", net=0)
    path.write_bytes(card_format.render([TEA, TEA_REFUND], [payout, nothing]))

    bills = CardBillClient(settings.card, "http://unused", http)
    lines = list(bills.lines(path))
    assert lines[2:] == [
        _line("card", SWEEP, payout.transfer_id, payout.transfer_id, 2974, 0, REFUNDED_AT,
              order=""),
    ]  # fmt: skip
    assert bills.summary(path) == BillSummary(DAY, lines=3, payments=3998, refunds=1000, fees=18)
