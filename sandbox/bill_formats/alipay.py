# ruff: noqa: RUF001, RUF002  (Alipay's own text: full-width parentheses, colons, commas)
"""Alipay's trade bill (bill_type `trade`): a zip of two GBK-encoded CSV files.

    {pid}_{yyyyMMdd}_业务明细.csv         '#' header lines, the column row, one row per
                                          trade (业务类型 交易) or refund (退款), an end
                                          marker, then '#交易合计' / '#退款合计' lines
    {pid}_{yyyyMMdd}_业务明细(汇总).csv   the same header, the summary columns and a 合计 row

As Alipay writes them: every detail value is followed by a tab (so that a spreadsheet
keeps long numbers as text), amounts are yuan with two decimals, a refund row shows
the order's amount in 订单金额（元）, the money returned as a negative 商家实收（元）
and the fee given back as a positive 服务费（元）; a trade's 服务费 is negative.
Times are Beijing time. `signcustomer` bills use the same layout.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import date, datetime

from sandbox.bill_entries import BEIJING, BillEntry
from sandbox.bill_formats._text import csv_text, decimal_text, local_time

DETAIL_COLUMNS = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号",
    "门店名称", "操作员", "终端号", "对方账户", "订单金额（元）", "商家实收（元）",
    "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）", "商家优惠（元）", "券核销金额（元）",
    "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号", "服务费（元）",
    "分润（元）", "备注",
)  # fmt: skip
SUMMARY_COLUMNS = (
    "门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）",
    "支付宝优惠（元）", "商家优惠（元）", "卡消费金额（元）", "服务费（元）", "分润（元）",
    "实收净额（元）",
)  # fmt: skip
_RULE = "-" * 41
ZERO = "0.00"


def file_names(pid: str, day: date) -> tuple[str, str, str]:
    """(the zip's, the details', the summary's) names."""
    stem = f"{pid}_{day:%Y%m%d}"
    return f"{stem}.csv.zip", f"{stem}_业务明细.csv", f"{stem}_业务明细(汇总).csv"


def render(entries: Sequence[BillEntry], pid: str, day: date, exported: datetime) -> bytes:
    _, details_name, summary_name = file_names(pid, day)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(details_name, _gbk(_details(entries, pid, day, exported)))
        archive.writestr(summary_name, _gbk(_summary(entries, pid, day, exported)))
    return buffer.getvalue()


def _gbk(text: str) -> bytes:
    return text.encode("gbk", errors="replace")  # a character GBK lacks becomes "?"


def _header(title: str, pid: str, day: date) -> list[str]:
    return [
        f"#支付宝{title}查询",
        f"#账号：[{pid}0156]",
        f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day:%Y年%m月%d日} 23:59:59]",
        f"#{_RULE}{title}列表{_RULE}",
    ]


def _details(entries: Sequence[BillEntry], pid: str, day: date, exported: datetime) -> str:
    trades = [e for e in entries if e.kind == "payment"]
    refunds = [e for e in entries if e.kind == "refund"]
    rows = [[f"{value}\t" for value in _detail_row(e)] for e in entries]
    return "\r\n".join(
        [
            *_header("业务明细", pid, day),
            ",".join(DETAIL_COLUMNS),
            *([csv_text(rows).rstrip("\r\n")] if rows else []),
            f"#{_RULE}业务明细列表结束{_RULE}",
            f"#交易合计：{len(trades)}笔，商家实收：{decimal_text(_sum(trades))}元，商家优惠：{ZERO}元",
            f"#退款合计：{len(refunds)}笔，商家实收：{decimal_text(-_sum(refunds))}元，商家优惠：{ZERO}元",
            f"#导出时间：[{exported.astimezone(BEIJING):%Y年%m月%d日 %H:%M:%S}]",
            "",
        ]
    )


def _detail_row(entry: BillEntry) -> list[str]:
    refund = entry.kind == "refund"
    received = -entry.amount if refund else entry.amount
    fee = entry.fee if refund else -entry.fee
    return [
        entry.trade_no,
        entry.order_reference,
        "退款" if refund else "交易",
        entry.description.replace("\t", " "),
        local_time(entry.created_at or entry.at, BEIJING),
        local_time(entry.at, BEIJING),
        "", "", "", "",
        "buy***@example.com",
        decimal_text(entry.payment_amount if refund else entry.amount),
        decimal_text(received),
        ZERO, ZERO, ZERO, ZERO, ZERO, "", ZERO, ZERO,
        entry.reference if refund else "",
        decimal_text(fee),
        ZERO,
        "",
    ]  # fmt: skip


def _summary(entries: Sequence[BillEntry], pid: str, day: date, exported: datetime) -> str:
    trades = [e for e in entries if e.kind == "payment"]
    refunds = [e for e in entries if e.kind == "refund"]
    received = _sum(trades) - _sum(refunds)
    fee = sum(e.fee for e in refunds) - sum(e.fee for e in trades)  # negative: paid
    totals = [
        str(len(trades)), str(len(refunds)), decimal_text(_sum(trades)),
        decimal_text(received), ZERO, ZERO, ZERO, decimal_text(fee), ZERO,
        decimal_text(received + fee),
    ]  # fmt: skip
    return "\r\n".join(
        [
            *_header("业务汇总", pid, day),
            ",".join(SUMMARY_COLUMNS),
            csv_text([["", "", *totals], ["合计", "", *totals]]).rstrip("\r\n"),
            f"#{_RULE}业务汇总列表结束{_RULE}",
            f"#导出时间：[{exported.astimezone(BEIJING):%Y年%m月%d日 %H:%M:%S}]",
            "",
        ]
    )


def _sum(entries: Sequence[BillEntry]) -> int:
    return sum(e.amount for e in entries)
