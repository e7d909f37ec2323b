"""WeChat Pay's fund-flow bill (资金账单), served beside the trade bill: a day's income and its
fees as account movements, with a SHA1 the download must match."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date

import httpx

from channels.base import ChannelName
from channels.bills import bill_client
from channels.wechatpay import bill_wire
from channels.wechatpay.bills import WeChatPayBillClient
from domain.money import apply_rate
from tests.channels.bill_helpers import BillDesk, Shop, bill_today, same_day
from tests.channels.conftest import Control, Inbox, RunningSandbox


async def test_the_fund_flow_shows_a_payment_as_income_and_its_fee_as_outgo(
    sandbox: RunningSandbox,
    client: httpx.AsyncClient,
    control: Control,
    inbox: Inbox,
) -> None:
    settings = sandbox.settings()
    bills = bill_client(ChannelName.WECHATPAY, settings, client)
    assert isinstance(bills, WeChatPayBillClient)
    rate = settings.channel_fee_rates["wechatpay"]
    shop = Shop(bills._api, control, inbox.url, rate)  # the adapter the bill client signs with
    day: date = bill_today(bills.zone)
    reference = await shop.pay(2500)
    same_day(bills.zone, day)
    await BillDesk(client, sandbox.base_url, ChannelName.WECHATPAY).publish(day)

    answer = await bills._api._call(
        "GET",
        "/v3/bill/fundflowbill",
        bill_wire.BillUrl,
        query={"bill_date": day.isoformat(), "account_type": "BASIC"},
    )
    file = await client.get(
        answer.download_url, headers={"Authorization": bills._authorization(answer.download_url)}
    )
    assert file.status_code == 200
    assert hashlib.sha1(file.content, usedforsecurity=False).hexdigest() == answer.hash_value

    rows = [[v.removeprefix("`") for v in row] for row in csv.reader(io.StringIO(file.text))]
    assert rows[0][:3] == ["记账时间", "微信支付业务单号", "资金流水单号"]
    ours = [row for row in rows if row[-1:] == [reference]]
    assert [(row[3], row[5], row[6]) for row in ours] == [
        ("交易", "收入", "25.00"),
        ("扣除交易手续费", "支出", f"0.{apply_rate(2500, rate):02d}"),
    ]
    assert rows[-2][0] == "资金流水总笔数"
