"""The pages' doors, over plain HTTP on each database: forms without their token change
nothing, another merchant's order is a 404, the session cookie carries its flags, no
page with account data may be cached, and a password change ends every session."""

from __future__ import annotations

import httpx

from api.pages.sessions import SESSION_COOKIE
from tests.conftest import System
from tests.pages.support import PASSWORD, Browser, form_token, new_staff, sign_in, signed_in_staff
from tests.support import create_merchant, create_order


async def _key_count(api: httpx.AsyncClient, merchant_id: str) -> int:
    keys = await api.get(f"/v1/merchants/{merchant_id}/api-keys")
    assert keys.status_code == 200, keys.text
    return len(keys.json())


async def test_a_form_posted_without_its_token_is_refused_and_changes_nothing(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    browser = await signed_in_staff(api, system.api_url, merchant_id)
    for data in ({"name": "forged"}, {"name": "forged", "csrf_token": "not-the-token"}):
        refused = await browser.post("/dashboard/api-keys", data)
        assert refused.status_code == 403
    assert await _key_count(api, merchant_id) == 0

    page = await browser.get("/dashboard/api-keys")
    made = await browser.post(
        "/dashboard/api-keys", {"name": "ok", "csrf_token": form_token(page.text)}
    )
    assert made.status_code == 200 and "psk_" in made.text
    assert await _key_count(api, merchant_id) == 1

    # Signing in is a form too: without the token it is refused before any password check.
    stranger = Browser(system.api_url)
    refused = await stranger.post(
        "/dashboard/sign-in", {"email": "a@b.example", "password": "x" * 12}
    )
    assert refused.status_code == 403


async def test_another_merchants_order_answers_404(api: httpx.AsyncClient, system: System) -> None:
    mine, theirs = await create_merchant(api), await create_merchant(api)
    their_order = await create_order(api, theirs)
    browser = await signed_in_staff(api, system.api_url, mine)
    page = await browser.get(f"/dashboard/orders/{their_order['id']}")
    assert page.status_code == 404
    assert "Oolong" not in page.text  # nothing of the order: its lines, say
    token = form_token((await browser.get("/dashboard")).text)
    refund = await browser.post(
        f"/dashboard/orders/{their_order['id']}/refunds",
        {"csrf_token": token, "idempotency_key": "k1", "amount": "1"},
    )
    assert refund.status_code == 404
    missing = await browser.get(f"/dashboard/statements/{theirs}:2020-01-01:CNY/csv")
    assert missing.status_code == 404


async def test_the_session_cookie_is_httponly_secure_and_same_site(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    email = await new_staff(api, merchant_id)
    answer = await sign_in(Browser(system.api_url), "dashboard", email, PASSWORD)
    assert answer.status_code == 303
    [cookie] = [c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags


async def test_no_page_with_account_data_may_be_cached(
    api: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    browser = await signed_in_staff(api, system.api_url, merchant_id)
    for path in (
        "/dashboard",
        f"/dashboard/orders/{order['id']}",
        "/dashboard/balances",
        "/dashboard/api-keys",
        "/dashboard/webhooks",
        "/dashboard/team",
        "/dashboard/sign-in",
    ):
        page = await browser.get(path)
        assert page.status_code == 200, (path, page.status_code)
        assert page.headers["cache-control"] == "no-store", path


async def test_a_password_change_ends_every_session(api: httpx.AsyncClient, system: System) -> None:
    merchant_id = await create_merchant(api)
    email = await new_staff(api, merchant_id)
    phone, laptop = Browser(system.api_url), Browser(system.api_url)
    for browser in (phone, laptop):
        assert (await sign_in(browser, "dashboard", email, PASSWORD)).status_code == 303
        assert (await browser.get("/dashboard")).status_code == 200

    team = await phone.get("/dashboard/team")
    changed = await phone.post(
        "/dashboard/password",
        {
            "csrf_token": form_token(team.text),
            "current_password": PASSWORD,
            "new_password": "another long password",
        },
    )
    assert changed.status_code == 303

    for browser in (phone, laptop):
        browser.cookies.setdefault(SESSION_COOKIE, "gone")
        answer = await browser.get("/dashboard")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/dashboard/sign-in"
    assert (await sign_in(Browser(system.api_url), "dashboard", email, PASSWORD)).status_code == 401
