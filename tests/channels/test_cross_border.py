"""Cross-border payments against the sandbox's channels, over HTTP.

A shop in Hong Kong or Europe prices in HKD or EUR; its Chinese buyer pays CNY through
Alipay or WeChat Pay, converted at the wallet's own rate, and the channel reports that
CNY and rate in its own fields, which our adapters read exactly. The card gateway
charges the presentment currency as it is, JPY's whole yen included.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from channels.alipay import protocol as gateway
from channels.alipay.adapter import AlipayAdapter
from channels.alipay.amounts import AmountFormatError, major_to_minor, minor_to_major
from channels.alipay.cross_border import read_rate
from channels.base import (
    ChannelAdapter,
    ChannelName,
    CreatePaymentRequest,
    NotificationKind,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
    accepted_currencies,
    supports_currency,
)
from channels.card.adapter import CardAdapter
from channels.errors import ChannelRejected
from channels.wechatpay import mapping
from channels.wechatpay import wire as wechat_wire
from channels.wechatpay.adapter import WeChatPayAdapter
from domain.fx.conversion import convert
from domain.fx.sandbox_rates import SandboxRates
from sandbox.channel_fx import RATE_PLACES, ChannelFx
from tests.channels.conftest import Control, Inbox, RunningSandbox
from tests.channels.test_wechatpay import platform_serial, wechatpay_adapter
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    get_order,
    http_client,
    wait_for,
    wait_status,
)

MERCHANT = "mch_harbour_tea"


def _payment(order_id: str, inbox: Inbox, amount: int, currency: str) -> CreatePaymentRequest:
    return CreatePaymentRequest(
        order_id=order_id,
        merchant_id=MERCHANT,
        amount=amount,
        currency=currency,
        description="Harbour tea house - Tieguanyin 150 g",
        notify_url=inbox.url,
    )


def _refund(order_id: str, amount: int, currency: str) -> RefundRequest:
    return RefundRequest(
        refund_id=f"rf_{secrets.token_hex(6)}",
        order_id=order_id,
        amount=amount,
        currency=currency,
        reason="one tin arrived dented",
    )


def _charged_at(amount: int, currency: str, rate: Decimal | None) -> int:
    """The CNY for `amount` at `rate`, by paysaga's one rounding rule."""
    assert rate is not None
    return convert(amount, currency, "CNY", rate).target_amount


@pytest.fixture
def alipay(channels: dict[ChannelName, ChannelAdapter]) -> AlipayAdapter:
    adapter = channels[ChannelName.ALIPAY]
    assert isinstance(adapter, AlipayAdapter)
    return adapter


@pytest.fixture
def card(channels: dict[ChannelName, ChannelAdapter]) -> CardAdapter:
    adapter = channels[ChannelName.CARD]
    assert isinstance(adapter, CardAdapter)
    return adapter


@pytest_asyncio.fixture
async def wechatpay(sandbox: RunningSandbox, client: httpx.AsyncClient) -> WeChatPayAdapter:
    adapter = wechatpay_adapter(sandbox, client)
    await adapter.learn_signer({"Wechatpay-Serial": platform_serial(sandbox.settings())})
    return adapter


# -- the wallets' own market ---------------------------------------------------------


def test_the_wallets_convert_at_their_own_moving_rate_not_at_our_mid() -> None:
    at = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    wallets, ours = ChannelFx(), SandboxRates()
    for currency in ("HKD", "EUR", "USD", "JPY"):
        rate = wallets.rate(currency, at)
        assert rate != ours.rate(currency, "CNY", at).value
        assert rate.as_tuple().exponent == -RATE_PLACES  # what WeChat Pay can state
        assert wallets.rate(currency, at + timedelta(days=1)) != rate  # it moves
        assert wallets.rate(currency, at) == rate  # and is the same for the same instant


def test_each_channel_says_which_price_currencies_it_takes() -> None:
    for wallet in (ChannelName.ALIPAY, ChannelName.WECHATPAY):
        assert {"CNY", "HKD", "EUR", "USD", "GBP", "JPY"} <= accepted_currencies(wallet)
        assert not supports_currency(wallet, "KWD")
    assert {"USD", "EUR", "JPY", "KWD", "CNY"} <= accepted_currencies(ChannelName.CARD)
    assert not supports_currency(ChannelName.CARD, "XAU")


# -- Alipay ------------------------------------------------------------------------


def test_alipay_amounts_and_rates_are_read_exactly_in_each_currencys_decimals() -> None:
    assert (minor_to_major(12_800, "HKD"), minor_to_major(1_280, "JPY")) == ("128.00", "1280")
    assert (major_to_minor("128.00", "HKD"), major_to_minor("1280", "JPY")) == (12_800, 1_280)
    assert major_to_minor("12.500", "KWD") == 12_500
    for text, currency in (("1280.0", "JPY"), ("1.001", "HKD"), ("1e3", "USD"), ("-1", "EUR")):
        with pytest.raises(AmountFormatError):
            major_to_minor(text, currency)
    assert read_rate("0.92463712") == Decimal("0.92463712")
    for text in ("9.2e-1", "0", " 0.9", "-0.9", "0.9.1"):
        with pytest.raises(AmountFormatError):
            read_rate(text)


async def test_an_hkd_alipay_trade_reports_the_cny_the_buyer_paid_and_alipays_rate(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox, control: Control, client: httpx.AsyncClient
) -> None:
    created = await alipay.create_payment(_payment(order_id, inbox, 12_800, "HKD"))
    page = await client.get(created.checkout_url, follow_redirects=True)
    assert "128.00 HKD" in page.text and " CNY" in page.text  # the price and the charge

    await control.pay(order_id)
    state = await alipay.query_payment(order_id)
    assert (state.status, state.amount, state.currency) == (PaymentStatus.PAID, 12_800, "HKD")
    assert state.payer_currency == "CNY" and state.channel_rate is not None
    assert state.payer_amount == _charged_at(12_800, "HKD", state.channel_rate)
    assert f"{state.payer_amount // 100}.{state.payer_amount % 100:02d} CNY" in page.text
    assert (state.settle_currency, state.settle_amount) == ("HKD", 12_800)  # T+1, in HKD

    [received] = await wait_for(inbox.received, lambda got: len(got) >= 1, "the notification")
    notification = alipay.parse_notification(received.headers, received.body)
    assert notification is not None and notification.kind is NotificationKind.PAYMENT_SUCCEEDED
    assert (notification.amount, notification.currency) == (12_800, "HKD")
    assert (notification.payer_amount, notification.channel_rate) == (
        state.payer_amount,
        state.channel_rate,
    )


async def test_an_alipay_refund_of_an_hkd_trade_is_in_hkd_and_gives_back_cny(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox, control: Control
) -> None:
    await alipay.create_payment(_payment(order_id, inbox, 12_800, "HKD"))
    await control.pay(order_id)
    request = _refund(order_id, 5_000, "HKD")

    refund = await alipay.refund(request)
    assert (refund.status, refund.amount, refund.currency) == (
        RefundStatus.SUCCEEDED,
        5_000,
        "HKD",
    )
    assert refund.payer_currency == "CNY"
    assert refund.payer_amount == _charged_at(5_000, "HKD", refund.channel_rate)
    queried = await alipay.query_refund(request.refund_id, order_id)
    assert queried == refund


async def test_alipay_refuses_a_price_currency_it_does_not_take_with_its_own_code(
    alipay: AlipayAdapter, order_id: str, inbox: Inbox
) -> None:
    # Past our own check, as if our table and Alipay's contract disagreed.
    biz = {
        "out_trade_no": order_id,
        "total_amount": "12.500",
        "subject": "Dates",
        "passback_params": MERCHANT,
        "trans_currency": "KWD",
        "settle_currency": "KWD",
    }
    with pytest.raises(ChannelRejected) as refused:
        await alipay._call(gateway.PRECREATE, biz, notify_url=inbox.url)
    assert refused.value.code == "ACQ.CURRENCY_NOT_SUPPORT"
    with pytest.raises(ChannelRejected) as refused:  # and ours says so without calling out
        await alipay.create_payment(_payment(order_id, inbox, 12_500, "KWD"))
    assert refused.value.code == "currency_not_supported"


# -- WeChat Pay ----------------------------------------------------------------------


async def test_an_eur_wechat_order_reports_payer_total_in_cny_and_the_exchange_rate(
    wechatpay: WeChatPayAdapter, order_id: str, inbox: Inbox, control: Control
) -> None:
    await wechatpay.create_payment(_payment(order_id, inbox, 4_550, "EUR"))
    await control.pay(order_id)

    [notice] = await wait_for(inbox.received, lambda got: len(got) >= 1, "the notification")
    notification = wechatpay.parse_notification(notice.headers, notice.body)
    assert notification is not None
    assert (notification.amount, notification.currency) == (4_550, "EUR")
    assert notification.payer_currency == "CNY" and notification.channel_rate is not None
    assert notification.payer_amount == _charged_at(4_550, "EUR", notification.channel_rate)
    # exchange_rate.rate is an integer, the rate times 10^8, read back exactly.
    scaled = notification.channel_rate.scaleb(8)
    assert scaled == scaled.to_integral_value()
    assert mapping.channel_rate(
        wechat_wire.ExchangeRate(type="USERPAYMENT_RATE", rate=int(scaled))
    ) == (notification.channel_rate)
    state = await wechatpay.query_payment(order_id)
    assert (state.amount, state.currency, state.payer_amount, state.channel_rate) == (
        4_550,
        "EUR",
        notification.payer_amount,
        notification.channel_rate,
    )


async def test_a_wechat_refund_of_an_eur_order_is_in_eur_and_gives_back_cny(
    wechatpay: WeChatPayAdapter, order_id: str, inbox: Inbox, control: Control
) -> None:
    await wechatpay.create_payment(_payment(order_id, inbox, 4_550, "EUR"))
    await control.pay(order_id)
    refund = await wechatpay.refund(_refund(order_id, 1_000, "EUR"))
    assert (refund.status, refund.amount, refund.currency) == (
        RefundStatus.SUCCEEDED,
        1_000,
        "EUR",
    )
    assert refund.payer_amount == _charged_at(1_000, "EUR", refund.channel_rate)

    received = await wait_for(inbox.received, lambda got: len(got) >= 2, "the refund's notice")
    notification = wechatpay.parse_notification(received[1].headers, received[1].body)
    assert notification is not None and notification.kind is NotificationKind.REFUND_SUCCEEDED
    assert (notification.amount, notification.currency) == (1_000, "EUR")
    assert (notification.payer_amount, notification.channel_rate) == (
        refund.payer_amount,
        refund.channel_rate,
    )


async def test_wechat_refuses_a_price_currency_it_does_not_take_with_param_error(
    wechatpay: WeChatPayAdapter, sandbox: RunningSandbox, order_id: str, inbox: Inbox
) -> None:
    settings = sandbox.settings().wechatpay
    order = mapping.native_order(
        _payment(order_id, inbox, 12_500, "KWD"), appid=settings.appid, mchid=settings.mchid
    )
    with pytest.raises(ChannelRejected) as refused:
        await wechatpay._call(
            "POST", "/v3/pay/transactions/native", wechat_wire.CodeUrl, body=order
        )
    assert refused.value.code == "PARAM_ERROR"


# -- the card gateway ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "shown"), [(4_999, "USD", "49.99 USD"), (1_280, "JPY", "1,280 JPY")]
)
async def test_a_card_payment_is_charged_in_its_presentment_currency(
    card: CardAdapter,
    order_id: str,
    inbox: Inbox,
    control: Control,
    client: httpx.AsyncClient,
    amount: int,
    currency: str,
    shown: str,
) -> None:
    created = await card.create_payment(_payment(order_id, inbox, amount, currency))
    assert shown in (await client.get(created.checkout_url)).text
    await control.pay(order_id, notify="drop")
    state = await card.query_payment(order_id)
    assert (state.status, state.amount, state.currency) == (PaymentStatus.PAID, amount, currency)
    assert (state.payer_amount, state.channel_rate) == (None, None)  # no conversion
    refund = await card.refund(_refund(order_id, amount, currency))
    assert (refund.amount, refund.currency) == (amount, currency)


async def test_the_card_gateway_refuses_a_currency_it_does_not_support(
    card: CardAdapter, order_id: str, inbox: Inbox
) -> None:
    with pytest.raises(ChannelRejected) as refused:
        await card.create_payment(_payment(order_id, inbox, 100, "XAU"))
    assert refused.value.code == "invalid_request_error"


# -- through paysaga ---------------------------------------------------------------


async def test_an_hkd_order_paid_at_the_alipay_cashier_is_paid_in_hkd(
    api: httpx.AsyncClient, system: System
) -> None:
    """The issue's story: a Hong Kong shop prices in HKD, its buyer pays CNY at Alipay."""
    merchant_id = await create_merchant(api)
    order = await create_order(
        api, merchant_id, channel="alipay", currency="HKD", auto_complete_seconds=3600
    )
    headers = {"Authorization": f"Bearer {system.env['PAYSAGA_SANDBOX_API_KEY']}"}
    async with http_client(system.sandbox_url, headers=headers) as sandbox:
        paid = await wait_for(
            lambda: sandbox.post(f"/control/payments/{order['id']}/pay", json={}),
            lambda response: response.status_code != 404,
            "the saga's Alipay trade",
        )
    assert paid.status_code == 200, paid.text
    assert paid.json()["currency"] == "HKD" and paid.json()["payer_currency"] == "CNY"
    await wait_status(api, order["id"], "awaiting_receipt")
    assert (await get_order(api, order["id"]))["currency"] == "HKD"
