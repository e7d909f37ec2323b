"""WeChat Pay API v3's daily trade bill: GET /v3/bill/tradebill, then its download_url.

    download   `GET /v3/bill/tradebill?bill_date=yyyy-MM-dd&bill_type=ALL`, signed and
               its answer verified through the adapter (`WeChatPayAdapter`: platform keys,
               certificate rotation, error mapping); 400 STATEMENT_CREATING is
               BillNotReady. Then a signed GET of `download_url` (it must be on the API's
               own host), streamed to disk; its answer is not signed, as WeChat Pay's is
               not, so the file's SHA1 must equal `hash_value` (wechatpayv3 checks the same)
               or it is BillCorrupt. 400 NO_STATEMENT_EXIST means the day had no
               transaction: WeChat Pay makes no file, and we write an empty one.
    lines      the CSV (UTF-8), streamed: the column row, then one row a trade (交易状态
               SUCCESS) or a refund (REFUND), each value behind a backtick, until the
               summary's column row (总交易单数,...)
    summary    the row under 总交易单数,应结订单总金额,退款总金额,...,手续费总金额

A trade's amount is 应结订单金额 and its fee 手续费; a refund's amount 退款金额, its
reference 商户退款单号 (our refund id), its fee the 手续费 given back (negative in
the file). WeChat Pay states fees to five decimal places but charges whole fen, so a
finer fraction is rounded half up. Times are Beijing time.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path

import httpx

from channels._sandbox_http import unix_now
from channels.base import ChannelName
from channels.bill_files import bill_file_name, day_in_name, download_to, integer, minor_units
from channels.errors import ChannelRejected, ChannelUnavailable
from channels.rsa2 import load_private_key
from channels.wechatpay import bill_wire
from channels.wechatpay.adapter import WeChatPayAdapter
from channels.wechatpay.crypto import authorization
from domain.bills import BillCorrupt, BillLine, BillLineKind, BillNotReady, BillSummary
from settings import WeChatPaySettings

SUMMARY_HEADER = "总交易单数"
BEIJING = timezone(timedelta(hours=8))  # WeChat Pay's bill day and times
_KINDS = {"SUCCESS": BillLineKind.PAYMENT, "REFUND": BillLineKind.REFUND}


class WeChatPayBillClient:
    channel = ChannelName.WECHATPAY
    zone: tzinfo = BEIJING

    def __init__(
        self,
        config: WeChatPaySettings,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], int] = unix_now,
    ) -> None:
        self._api = WeChatPayAdapter(config, base_url, client, clock=clock)
        self._config = config
        self._base_url = base_url.rstrip("/")
        self._client = client
        self._clock = clock
        self._merchant_key = load_private_key(config.merchant_private_key.get_secret_value())

    def __repr__(self) -> str:  # keep the keys out of any accidental repr
        return f"WeChatPayBillClient(mchid={self._config.mchid!r}, base_url={self._base_url!r})"

    async def download(self, day: date, directory: Path) -> Path:
        target = directory / bill_file_name("wechatpay", "tradebill", day, ".csv")
        try:
            bill = await self._api._call(  # the adapter's one signed, verified path
                "GET",
                "/v3/bill/tradebill",
                bill_wire.BillUrl,
                query={"bill_date": day.isoformat(), "bill_type": "ALL"},
            )
        except ChannelRejected as refusal:
            if refusal.code == bill_wire.STATEMENT_CREATING:
                raise BillNotReady(f"wechatpay trade bill of {day}") from None
            if refusal.code == bill_wire.NO_STATEMENT_EXIST:
                target.write_bytes(b"")  # no transaction that day: an empty bill
                return target
            raise
        downloaded = await download_to(
            self._client,
            "wechatpay bill file",
            self._own_url(bill.download_url),
            target,
            headers={"Authorization": self._authorization(bill.download_url)},
        )
        if not secrets.compare_digest(downloaded.sha1, bill.hash_value.lower()):
            target.unlink()  # no file left that a reader could take for the bill
            raise BillCorrupt(f"{target.name}: SHA1 differs from the bill's hash_value")
        return target

    def lines(self, path: Path) -> Iterator[BillLine]:
        with path.open(encoding="utf-8-sig", newline="") as file:
            rows = csv.reader(file)
            header = next(rows, None)
            if header is None:
                return  # NO_STATEMENT_EXIST: no line
            for row in rows:
                cells = _values(row)
                if cells and cells[0] == SUMMARY_HEADER:
                    return
                yield _line(dict(zip(header, cells, strict=False)))
        raise BillCorrupt(f"{path.name}: no summary rows: the file is cut short")

    def summary(self, path: Path) -> BillSummary:
        day = day_in_name(path)
        with path.open(encoding="utf-8-sig", newline="") as file:
            rows = csv.reader(file)
            for row in rows:
                if _values(row)[:1] == [SUMMARY_HEADER]:
                    totals = dict(zip(_values(row), _values(next(rows, [])), strict=False))
                    return _summary(day, totals)
        if path.stat().st_size == 0:
            return BillSummary(day=day, lines=0, payments=0, refunds=0, fees=0)
        raise BillCorrupt(f"{path.name}: no summary rows")

    def _own_url(self, url: str) -> str:
        """The download must come from the API itself: it is sent our signature."""
        if not url.startswith(self._base_url + "/"):
            raise ChannelUnavailable(
                "wechatpay tradebill: download_url is not on the API's host",
                code="invalid_response",
            )
        return url

    def _authorization(self, url: str) -> str:
        return authorization(
            mchid=self._config.mchid,
            serial_no=self._config.merchant_serial,
            key=self._merchant_key,
            method="GET",
            path=httpx.URL(url).raw_path.decode("ascii"),
            body="",
            timestamp=self._clock(),
            nonce=secrets.token_hex(16).upper(),
        )


def _values(row: list[str]) -> list[str]:
    """A row's values without WeChat Pay's leading backtick."""
    return [cell.removeprefix("`").strip() for cell in row]


def _line(row: dict[str, str]) -> BillLine:
    kind = _KINDS.get(row.get("交易状态", ""))
    if kind is None:
        raise BillCorrupt(f"wechatpay bill: unhandled 交易状态 {row.get('交易状态')!r}")
    refund = kind is BillLineKind.REFUND
    out_trade_no = row["商户订单号"]
    fee = minor_units(row["手续费"], "手续费", rounded=True)
    return BillLine(
        channel=ChannelName.WECHATPAY.value,
        kind=kind,
        reference=row["商户退款单号"] if refund else out_trade_no,
        channel_id=row["微信退款单号"] if refund else row["微信订单号"],
        order_reference=out_trade_no,
        currency=row.get("货币种类") or "CNY",
        amount=minor_units(row["退款金额" if refund else "应结订单金额"], "金额"),
        fee=-fee if refund else fee,
        at=_beijing(row["交易时间"]),
    )


def _summary(day: date, totals: dict[str, str]) -> BillSummary:
    try:
        return BillSummary(
            day=day,
            lines=integer(totals["总交易单数"], "总交易单数"),
            payments=minor_units(totals["应结订单总金额"], "应结订单总金额"),
            refunds=minor_units(totals["退款总金额"], "退款总金额"),
            fees=minor_units(totals["手续费总金额"], "手续费总金额", rounded=True),
        )
    except KeyError as missing:
        raise BillCorrupt(f"wechatpay bill summary: no {missing}") from None


def _beijing(text: str) -> datetime:
    try:
        naive = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BillCorrupt(f"wechatpay bill: {text!r} is not a time") from None
    return naive.replace(tzinfo=BEIJING).astimezone(UTC)
