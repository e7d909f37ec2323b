# ruff: noqa: RUF001, RUF002  (Alipay's own text: full-width parentheses, colons, commas)
"""Alipay's daily trade bill: `alipay.data.dataservice.bill.downloadurl.query`, then the zip.

    download   the gateway method (RSA2-signed both ways, `channels.alipay.protocol`) with
               biz_content {"bill_type": "trade", "bill_date": "yyyy-MM-dd"} answers
               `bill_download_url`; 40004 isp.bill_not_exist is BillNotReady. The zip
               is streamed to disk and every member's CRC checked (BillCorrupt if not).
               The address is believed because the answer carrying it is Alipay's,
               signed (it is on Alipay's file host, not the gateway's, in production)
    lines      the 业务明细 CSV (GBK), streamed: '#' lines and the column row skipped,
               业务类型 交易 -> a payment, 退款 -> a refund; values lose Alipay's tab padding
    summary    '#交易合计：N笔，商家实收：X元' and '#退款合计...' of the details, the fee
               from the 合计 row of the 业务汇总 file

A trade's amount is 订单金额（元） and its fee the negated 服务费（元）; a refund's
amount is the negated 商家实收（元）, its reference 退款批次号/请求号 (our refund id,
which the adapter sends as out_request_no) and its fee the 服务费 given back.
Times are Beijing time (完成时间). GBK is read as GB18030, its superset.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx

from channels.alipay import protocol as gateway
from channels.base import ChannelName
from channels.bill_files import bill_file_name, day_in_name, download_to, integer, minor_units
from channels.errors import ChannelRejected, ChannelUnavailable
from channels.http import raise_for_status, send
from channels.rsa2 import load_private_key, load_public_key
from domain.bills import BillCorrupt, BillLine, BillLineKind, BillNotReady, BillSummary
from settings import AlipaySettings

METHOD = "alipay.data.dataservice.bill.downloadurl.query"
NOT_READY = "isp.bill_not_exist"
ENCODING = "gb18030"  # a superset of GBK: reads every GBK file
_FORM = "application/x-www-form-urlencoded;charset=utf-8"
_TOTAL = re.compile(r"#(交易|退款)合计：(\d+)笔，商家实收：(-?[\d.]+)元")


def _now() -> datetime:
    return datetime.now(UTC)


class AlipayBillClient:
    channel = ChannelName.ALIPAY
    zone: tzinfo = gateway.BEIJING

    def __init__(
        self,
        config: AlipaySettings,
        gateway_url: str,
        client: httpx.AsyncClient,
        *,
        bill_type: str = "trade",
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._app_id = config.app_id
        self._app_key = load_private_key(config.app_private_key.get_secret_value())
        self._alipay_key = load_public_key(config.alipay_public_key)
        self._gateway_url = gateway_url
        self._client = client
        self._bill_type = bill_type
        self._clock = clock

    def __repr__(self) -> str:  # keep the key out of any accidental repr
        return f"AlipayBillClient(app_id={self._app_id!r}, gateway_url={self._gateway_url!r})"

    async def download(self, day: date, directory: Path) -> Path:
        url = await self._download_url(day)
        target = directory / bill_file_name("alipay", self._bill_type, day, ".csv.zip")
        await download_to(self._client, "alipay bill file", url, target)
        try:
            _check_zip(target)
        except BillCorrupt:
            target.unlink()  # no file left that a reader could take for the bill
            raise
        return target

    async def _download_url(self, day: date) -> str:
        biz = {"bill_type": self._bill_type, "bill_date": day.isoformat()}
        params = gateway.signed_request(
            app_id=self._app_id, method=METHOD, biz_content=biz, key=self._app_key,
            now=self._clock(),
        )  # fmt: skip
        what = f"alipay {METHOD}"
        response = await send(
            self._client, what, "POST", self._gateway_url,
            content=urlencode(params), headers={"Content-Type": _FORM},
        )  # fmt: skip
        raise_for_status(what, response.status_code, f"http_{response.status_code}")
        try:
            node = gateway.read_response(METHOD, response.content, self._alipay_key)
        except ChannelRejected as refusal:
            if refusal.code == NOT_READY:
                raise BillNotReady(f"alipay {self._bill_type} bill of {day}") from None
            raise
        url = str(node.get("bill_download_url", ""))
        if urlsplit(url).scheme not in ("http", "https"):
            raise ChannelUnavailable(f"{what}: no bill_download_url", code="invalid_response")
        return url

    def lines(self, path: Path) -> Iterator[BillLine]:
        with _member(path, "_业务明细.csv") as text:
            header: list[str] | None = None
            for row in csv.reader(text):
                if not row or row[0].startswith("#"):
                    continue
                cells = [cell.strip() for cell in row]
                if header is None:
                    header = cells
                    continue
                yield _line(dict(zip(header, cells, strict=False)))

    def summary(self, path: Path) -> BillSummary:
        totals: dict[str, tuple[int, int]] = {}
        with _member(path, "_业务明细.csv") as text:
            for raw in text:
                if match := _TOTAL.match(raw.strip()):
                    totals[match[1]] = (integer(match[2], "笔数"), minor_units(match[3], "合计"))
        if set(totals) != {"交易", "退款"}:
            raise BillCorrupt(f"{path.name}: no 交易合计 / 退款合计 lines")
        return BillSummary(
            day=day_in_name(path),
            lines=totals["交易"][0] + totals["退款"][0],
            payments=totals["交易"][1],
            refunds=-totals["退款"][1],
            fees=-_summary_fee(path),
        )


def _line(row: dict[str, str]) -> BillLine:
    kind = row.get("业务类型", "")
    if kind not in ("交易", "退款"):
        raise BillCorrupt(f"alipay bill: unknown 业务类型 {kind!r}")
    refund = kind == "退款"
    out_trade_no = row["商户订单号"]
    fee = minor_units(row["服务费（元）"], "服务费")
    return BillLine(
        channel=ChannelName.ALIPAY.value,
        kind=BillLineKind.REFUND if refund else BillLineKind.PAYMENT,
        reference=row["退款批次号/请求号"] if refund else out_trade_no,
        channel_id=row["支付宝交易号"],
        order_reference=out_trade_no,
        currency="CNY",
        amount=(
            -minor_units(row["商家实收（元）"], "商家实收")
            if refund
            else minor_units(row["订单金额（元）"], "订单金额")
        ),
        fee=fee if refund else -fee,
        at=_beijing(row["完成时间"]),
    )


def _summary_fee(path: Path) -> int:
    """服务费（元） of the 业务汇总 file's 合计 row: the day's net fee, negative."""
    with _member(path, "_业务明细(汇总).csv") as text:
        header: list[str] | None = None
        for row in csv.reader(text):
            if not row or row[0].startswith("#"):
                continue
            cells = [cell.strip() for cell in row]
            if header is None:
                header = cells
            elif cells[0] == "合计":
                return minor_units(dict(zip(header, cells, strict=False))["服务费（元）"], "服务费")
    raise BillCorrupt(f"{path.name}: the 业务汇总 file has no 合计 row")


@contextmanager
def _member(path: Path, suffix: str) -> Iterator[io.TextIOWrapper]:
    """The text of the zip's member whose name ends with `suffix`, read as it comes."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BillCorrupt(f"{path.name}: not a zip ({type(exc).__name__})") from None
    with archive:
        name = next((n for n in archive.namelist() if n.endswith(suffix)), None)
        if name is None:
            raise BillCorrupt(f"{path.name}: no *{suffix} in the zip")
        with io.TextIOWrapper(archive.open(name), ENCODING, newline="") as text:
            yield text


def _check_zip(path: Path) -> None:
    """Every member decompresses and matches its CRC, as a whole download must."""
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BillCorrupt(f"{path.name}: not a whole zip ({type(exc).__name__})") from None
    if broken is not None or not any(n.endswith("_业务明细.csv") for n in names):
        raise BillCorrupt(f"{path.name}: a damaged or missing 业务明细 file")


def _beijing(text: str) -> datetime:
    try:
        naive = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BillCorrupt(f"alipay bill: {text!r} is not a time") from None
    return naive.replace(tzinfo=gateway.BEIJING).astimezone(UTC)
