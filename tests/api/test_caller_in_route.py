"""Routes that check their caller's credential in their own session (api.auth.caller,
`AnyCallerCheckedInRoute`: one session and one thread hop a request, not two) refuse
exactly what the other routes refuse: an access token whose password changed since, a
revoked API key, a key that never was; and a 401 comes before the 404 of a missing order."""

from __future__ import annotations

import httpx

from tests.conftest import System
from tests.identities import client_as, merchant_with_key, new_password, register_buyer
from tests.support import create_order


def _order_paths(order_id: str) -> list[str]:
    return [f"/v1/orders/{order_id}", f"/v1/orders/{order_id}/payments"]


def _refused(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "authentication_error",
        "invalid_credentials",
        "Authorization",
    )


async def test_a_route_checking_its_caller_itself_refuses_what_the_others_refuse(
    system: System, api: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    buyer = await register_buyer(system, anonymous)
    shop = await merchant_with_key(api)
    async with client_as(system, buyer.headers) as as_buyer:
        order_id = (await create_order(as_buyer, shop.id))["id"]
        for path in _order_paths(order_id):
            assert (await as_buyer.get(path)).status_code == 200
        changed = await as_buyer.post(
            "/v1/me/password",
            json={"current_password": buyer.password, "new_password": new_password()},
        )
        assert changed.status_code == 200, changed.text
    async with client_as(system, shop.headers) as as_shop:
        for path in _order_paths(order_id):  # the key is checked in the read's own session
            answer = await as_shop.get(path)
            assert answer.status_code == 200, answer.text
        keys = (await as_shop.get(f"/v1/merchants/{shop.id}/api-keys")).json()
    (key,) = [k for k in keys if shop.api_key.startswith(k["prefix"])]
    revoked = await api.delete(f"/v1/merchants/{shop.id}/api-keys/{key['id']}")
    assert revoked.status_code == 200, revoked.text

    never_was = {"Authorization": f"Bearer {shop.api_key[:-4]}xxxx"}
    for headers in (buyer.headers, shop.headers, never_was):  # stale, revoked, made up
        async with client_as(system, headers) as caller:
            for path in [*_order_paths(order_id), *_order_paths("ord_never_was")]:
                _refused(await caller.get(path))
    assert (await api.get(f"/v1/orders/{order_id}")).status_code == 200  # operators still
