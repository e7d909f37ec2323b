"""People using the pages in a real Chromium, against the running system (SQLite only:
what the browser shows does not depend on the database; the pages' database work is
tested on both in test_page_security.py).

A merchant signs in, finds an order paid at the sandbox, refunds half of it, and sees
the refund on the order's timeline and its balance change; an operator retries a
compensation that the channel refused, from the review queue.
"""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from playwright.async_api import Page, expect

from api.manage import create_operator
from tests.conftest import System
from tests.pages.conftest import Screenshots
from tests.pages.support import PASSWORD, new_staff
from tests.support import create_merchant, create_order, pay, wait_status

pytestmark = pytest.mark.parametrize("system", ["sqlite"], indirect=True)


async def _available(page: Page) -> str:
    return (await page.locator("#balances .available").first.inner_text()).strip()


async def test_a_merchant_refunds_half_an_order_and_sees_it_everywhere(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    page: Page,
    screenshots: Screenshots,
) -> None:
    merchant_id = await create_merchant(api)
    email = await new_staff(api, merchant_id)
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    paid = await wait_status(api, order["id"], "completed")
    half = paid["amounts"]["payable"] // 2

    await page.goto(f"{system.api_url}/dashboard/sign-in")
    await screenshots.take(page, "dashboard-sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Orders")).to_be_visible()

    await page.goto(f"{system.api_url}/dashboard/balances")
    before = await _available(page)

    await page.goto(f"{system.api_url}/dashboard")
    await page.get_by_label("Search by order id").fill(order["id"])
    await page.get_by_role("button", name="Filter").click()
    await screenshots.take(page, "dashboard-orders")
    await page.get_by_role("link", name=order["id"]).click()
    await expect(page.locator("#timeline")).to_contain_text("Payment recorded")
    await screenshots.take(page, "dashboard-order")

    await page.get_by_label("Amount to refund (minor units)").fill(str(half))
    await page.get_by_role("button", name="Ask for the refund").click()
    await expect(page.get_by_role("status")).to_contain_text("Refund accepted")
    await expect(page.locator("#timeline")).to_contain_text("(merchant)")
    await expect(page.locator("#refunded")).to_contain_text(f"{half // 100}.{half % 100:02d}")
    await screenshots.take(page, "dashboard-order-refunded")

    await page.goto(f"{system.api_url}/dashboard/balances")
    await expect(page.locator("#balances .available").first).not_to_have_text(before)
    await screenshots.take(page, "dashboard-balances")


async def test_an_operator_retries_a_refused_compensation_from_the_review_queue(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    page: Page,
    screenshots: Screenshots,
) -> None:
    # How the saga parks an order for ops: the merchant is suspended (settling fails),
    # and the channel refuses the compensating refund.
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await api.post(f"/v1/merchants/{merchant_id}/suspend")
    refusing = await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "fail"})
    assert refusing.status_code == 200, refusing.text
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "compensation_failed")
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "succeed"})

    email = f"ops-{secrets.token_hex(4)}@ops.example.com"
    create_operator(system.env["PAYSAGA_DATABASE_URL"], email, PASSWORD, "Ops")
    await page.goto(f"{system.api_url}/console/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    row = page.locator("#review-queue tr", has_text=order["id"])
    await expect(row).to_contain_text("compensation_failed")
    await screenshots.take(page, "console-review-queue")

    await page.get_by_role("link", name=order["id"]).click()
    link = page.get_by_role("link", name=re.compile("Open in Temporal UI"))
    assert f"/workflows/order-{order['id']}" in (await link.get_attribute("href") or "")
    await screenshots.take(page, "console-order")

    await page.goto(f"{system.api_url}/console")
    await row.get_by_role("button", name=re.compile("Retry compensation")).click()
    await expect(page.get_by_role("status")).to_contain_text("Retry sent")
    await wait_status(api, order["id"], "refunded")

    for name in ("merchants", "coupons", "settlements", "ledger"):
        await page.goto(f"{system.api_url}/console/{name}")
        await screenshots.take(page, f"console-{name}")
