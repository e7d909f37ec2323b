"""A buyer on a phone pays through the hosted checkout, in a real Chromium (SQLite only,
like the other browser tests): WeChat Pay first (a QR code), then card at the card
gateway's page with the test card, whose link back leads to our page: the receipt.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, ViewportSize, expect

from tests.conftest import System
from tests.pages.conftest import Screenshots
from tests.support import create_merchant, create_order, pay, scraped, wait_for

pytestmark = pytest.mark.parametrize("system", ["sqlite"], indirect=True)
PHONE: ViewportSize = {"width": 390, "height": 844}


async def test_a_buyer_on_a_phone_switches_to_card_and_lands_on_the_receipt(
    api: httpx.AsyncClient, system: System, chromium: Browser, screenshots: Screenshots
) -> None:
    merchant_id = await create_merchant(api)
    shop = "https://shop.example.com/thanks"
    order = await create_order(api, merchant_id, channel=None, return_url=shop)
    context = await chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    try:
        await page.goto(order["checkout_url"])
        await expect(page.get_by_role("heading", name="Checkout")).to_be_visible()
        await expect(page.locator(".due")).to_contain_text("74.98")
        await page.get_by_role("button", name="WeChat Pay").click()
        await expect(page.locator("svg.qr")).to_be_visible()
        await screenshots.take(page, "checkout-wechatpay")

        await page.get_by_role("button", name="Bank card").click()
        await page.get_by_role("link", name="Open the payment page").click()
        await page.get_by_label("Card number").fill("4242 4242 4242 4242")
        await page.get_by_label("Expiry (MM/YY)").fill("12/34")
        await page.get_by_label("CVC").fill("123")
        await page.get_by_role("button", name="Pay").click()
        await expect(page.get_by_role("heading")).to_contain_text("Payment")

        # The gateway's page sends the buyer back to our checkout, which follows the order
        # on its own until the saga has the payment.
        await page.get_by_role("link", name="Back to the shop").click()
        await expect(page).to_have_url(order["checkout_url"])
        await expect(page.get_by_role("heading", name="Payment received")).to_be_visible(
            timeout=15_000
        )
        await expect(page.get_by_role("link", name="Back to the shop")).to_have_attribute(
            "href", shop
        )
        await screenshots.take(page, "checkout-receipt")
    finally:
        await context.close()


async def test_a_buyer_looking_at_the_qr_code_sees_the_receipt_once_the_payment_lands(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    chromium: Browser,
) -> None:
    """The page's script waits on /status (static/checkout.js): the wallet's payment
    reloads it to the receipt, with nobody touching the page."""
    order = await create_order(api, await create_merchant(api), channel="wechatpay")
    context = await chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    try:
        await page.goto(order["checkout_url"])
        await expect(page.locator("svg.qr")).to_be_visible()
        await wait_for(
            lambda: scraped(f"{system.api_url}/metrics", "paysaga_order_status_waiters"),
            lambda count: count == 1,
            "the page's status request to wait",
        )
        await pay(sandbox, order["id"])
        await expect(page.get_by_role("heading", name="Payment received")).to_be_visible(
            timeout=15_000
        )
    finally:
        await context.close()
