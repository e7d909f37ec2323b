"""WeChat Pay API v3's trade bill (交易账单, bill_type ALL): UTF-8 CSV, fields behind a backtick.

    交易时间,公众账号ID,商户号,...,手续费,费率,订单金额,申请退款金额,费率备注   the column row
    `2026-11-30 16:10:05,`wx...,`1900000001,...                                  one row a trade
                                                                                 (SUCCESS) or a
                                                                                 refund (REFUND)
    总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,...        the summary row
    `2,`39.98,`20.00,`0.00,`0.12000,...                                          and its values

WeChat Pay puts a backtick before every value so that a spreadsheet keeps long
numbers as text. Amounts are yuan with two decimals; fees (手续费) with five, charged
in whole fen: positive on a trade, the fee given back negative on a refund. A refund
row repeats its order's fields (应结订单金额, 订单金额) and states 退款金额. Times are
Beijing time.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from sandbox.bill_entries import BEIJING, BillEntry
from sandbox.bill_formats._text import csv_text, decimal_text, local_time
from sandbox.wechatpay_views import derived_id, refund_id

COLUMNS = (
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号",
    "用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额",
    "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态",
    "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注",
)  # fmt: skip
SUMMARY_COLUMNS = (
    "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额",
    "订单总金额", "申请退款总金额",
)  # fmt: skip
ZERO = "0.00"


def render(entries: Sequence[BillEntry], *, appid: str, mchid: str, fee_rate: Decimal) -> bytes:
    rate = f"{(fee_rate * 100).normalize():f}%"
    rows = [_row(entry, appid=appid, mchid=mchid, rate=rate) for entry in entries]
    trades = [e for e in entries if e.kind == "payment"]
    refunds = [e for e in entries if e.kind == "refund"]
    paid, refunded = sum(e.amount for e in trades), sum(e.amount for e in refunds)
    fees = sum(e.fee for e in trades) - sum(e.fee for e in refunds)
    summary = [
        str(len(entries)), decimal_text(paid), decimal_text(refunded), ZERO,
        decimal_text(fees, 5), decimal_text(paid), decimal_text(refunded),
    ]  # fmt: skip
    text = csv_text([COLUMNS, *(_ticked(r) for r in rows), SUMMARY_COLUMNS, _ticked(summary)])
    return text.encode("utf-8")


def _ticked(values: Sequence[str]) -> list[str]:
    return [f"`{value}" for value in values]


def _row(entry: BillEntry, *, appid: str, mchid: str, rate: str) -> list[str]:
    refund = entry.kind == "refund"
    order_amount = decimal_text(entry.payment_amount if refund else entry.amount)
    refunded = decimal_text(entry.amount) if refund else ZERO
    return [
        local_time(entry.at, BEIJING), appid, mchid, "0", "",
        entry.trade_no, entry.order_reference,
        derived_id("o", entry.order_reference), "NATIVE",
        "REFUND" if refund else "SUCCESS", "OTHERS", "CNY",
        order_amount, ZERO,
        refund_id(entry.reference) if refund else "0",
        entry.reference if refund else "0",
        refunded, ZERO,
        "ORIGINAL" if refund else "", "SUCCESS" if refund else "",
        entry.description, entry.merchant_id,
        decimal_text(-entry.fee if refund else entry.fee, 5), rate,
        order_amount, refunded, "",
    ]  # fmt: skip


FUND_FLOW_COLUMNS = (
    "记账时间", "微信支付业务单号", "资金流水单号", "业务名称", "业务类型", "收支类型",
    "收支金额(元)", "账户结余(元)", "资金变更提交申请人", "备注", "业务凭证号",
)  # fmt: skip
FUND_FLOW_SUMMARY = ("资金流水总笔数", "收入笔数", "收入金额", "支出笔数", "支出金额")


def render_fund_flow(entries: Sequence[BillEntry]) -> bytes:
    """The basic account's fund flow (资金账单): a trade's income and its fee, a refund's
    outgo (less the fee given back), each a row, with a running balance from zero."""
    rows: list[list[str]] = []
    income: list[int] = []
    outgo: list[int] = []
    for entry in entries:
        moves = (
            [("退款", outgo, entry.amount - entry.fee)]
            if entry.kind == "refund"
            else [("交易", income, entry.amount), ("扣除交易手续费", outgo, entry.fee)]
        )
        for name, side, amount in moves:
            side.append(amount)
            rows.append(
                [
                    local_time(entry.at, BEIJING), entry.trade_no,
                    derived_id("f", f"{entry.reference}:{name}"), name, name,
                    "收入" if side is income else "支出", decimal_text(amount),
                    decimal_text(sum(income) - sum(outgo)), "system", "", entry.reference,
                ]
            )  # fmt: skip
    summary = [
        str(len(rows)), str(len(income)), decimal_text(sum(income)),
        str(len(outgo)), decimal_text(sum(outgo)),
    ]  # fmt: skip
    text = csv_text([FUND_FLOW_COLUMNS, *map(_ticked, rows), FUND_FLOW_SUMMARY, _ticked(summary)])
    return text.encode("utf-8")
