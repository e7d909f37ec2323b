"""Every list of the API refuses a cursor it cannot find the same way: 400 `cursor_invalid`.

Lists used to differ: some said `invalid_cursor`, /v1/me/notifications a 404, and the
lists keyed by id alone answered a page after any string at all.
"""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import Session

from db.ledger import lock_accounts
from domain.ledger import AccountKind, account_id
from tests.api.test_orders import assert_error
from tests.conftest import System
from tests.identities import client_as, register_buyer
from tests.support import create_merchant

UNKNOWN = "no_such_item"


@pytest.mark.parametrize("system", ["sqlite"], indirect=True)  # routing, not the database
async def test_every_list_refuses_an_unknown_cursor_alike(
    system: System, api: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    account = account_id(AccountKind.MERCHANT_PENDING, merchant_id, "CNY")
    with Session(system.engine) as session, session.begin():
        lock_accounts(session, [account])  # opens it (empty), as a first posting would
    operator_lists = [
        "/v1/orders",
        "/v1/merchants",
        "/v1/coupons",
        f"/v1/merchants/{merchant_id}/reviews",
        f"/v1/merchants/{merchant_id}/ledger",
        f"/v1/merchants/{merchant_id}/statements",
        "/v1/ledger/accounts",
        f"/v1/ledger/accounts/{account}",
    ]
    for path in operator_lists:
        assert (await api.get(path)).status_code == 200, path
        refused = await api.get(path, params={"starting_after": UNKNOWN})
        assert_error(refused, 400, "cursor_invalid", "starting_after")

    buyer = await register_buyer(system, anonymous)
    async with client_as(system, buyer.headers) as as_buyer:
        refused = await as_buyer.get("/v1/me/notifications", params={"starting_after": UNKNOWN})
    assert_error(refused, 400, "cursor_invalid", "starting_after")
