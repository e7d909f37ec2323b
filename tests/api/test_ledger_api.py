"""The ledger as merchants and operators read it: balances, entries, statements, accounts.

Other tests share the database, so every assertion is scoped to this test's own
merchants, except the trial balance, whose totals must be zero whatever else ran.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlmodel import Session, col, select

from db.settlement import prepare_statement
from db.tables import JournalEntry
from tests.conftest import System
from tests.support import create_merchant, create_order, pay, post_refund, wait_for, wait_status

# The standard test order: 7498 CNY on alipay at 0.6% fee and 5% commission.
PAYABLE, FEE, COMMISSION = 7498, 45, 375
NET = PAYABLE - FEE - COMMISSION


async def _get(api: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _assert_error(response: httpx.Response, status: int, code: str, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param"}
    assert (error["code"], error["param"]) == (code, param), error


async def _completed_order(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, merchant_id: str
) -> str:
    order = await create_order(api, merchant_id)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    return str(order["id"])


async def _held_order(api: httpx.AsyncClient, sandbox: httpx.AsyncClient, merchant_id: str) -> str:
    """Paid, but waiting for the buyer's receipt: the merchant's share stays pending."""
    order = await create_order(api, merchant_id, auto_complete_seconds=3600)
    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "awaiting_receipt")
    return str(order["id"])


async def _refund(api: httpx.AsyncClient, order_id: str, amount: int) -> dict[str, Any]:
    """A merchant's partial refund, once the channel has paid it; returns the refund."""
    response = await post_refund(api, order_id, amount=amount)
    assert response.status_code == 201, response.text
    refund_id = response.json()["id"]

    async def read() -> dict[str, Any]:
        return await _get(api, f"/v1/refunds/{refund_id}")

    return await wait_for(read, lambda r: r["status"] == "succeeded", f"refund {refund_id}")


async def _balances(api: httpx.AsyncClient, merchant_id: str) -> list[dict[str, Any]]:
    body = await _get(api, f"/v1/merchants/{merchant_id}/balances")
    assert body["merchant_id"] == merchant_id
    return list(body["balances"])


def _cny(pending: int = 0, available: int = 0, in_transit: int = 0) -> list[dict[str, Any]]:
    return [
        {"currency": "CNY", "pending": pending, "available": available, "in_transit": in_transit}
    ]


# -- balances ----------------------------------------------------------------------


async def test_a_completed_order_makes_the_merchant_share_available(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    assert await _balances(api, merchant_id) == []  # no account yet, no currency

    await _completed_order(api, sandbox, merchant_id)

    assert await _balances(api, merchant_id) == _cny(available=NET)


async def test_an_order_awaiting_receipt_keeps_the_share_pending(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    await _held_order(api, sandbox, merchant_id)

    assert await _balances(api, merchant_id) == _cny(pending=NET)


async def test_a_partial_refund_takes_the_merchant_part_from_available(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    order_id = await _completed_order(api, sandbox, merchant_id)

    refund = await _refund(api, order_id, 2000)

    merchant_part = refund["parts"]["merchant_net"]
    assert 0 < merchant_part < 2000
    assert await _balances(api, merchant_id) == _cny(available=NET - merchant_part)


# -- the merchant's ledger -----------------------------------------------------------


async def test_following_cursors_reads_every_entry_once_newest_first(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    await asyncio.gather(*(_completed_order(api, sandbox, merchant_id) for _ in range(3)))

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["starting_after"] = cursor
        page = await _get(api, f"/v1/merchants/{merchant_id}/ledger", **params)
        pages += 1
        assert len(page["data"]) <= 2
        seen += page["data"]
        cursor = page["next_cursor"]
        assert page["has_more"] == (cursor is not None)
        if cursor is None:
            break

    with Session(system.engine) as session:
        expected = session.exec(
            select(JournalEntry.id)
            .where(JournalEntry.merchant_id == merchant_id)
            .order_by(col(JournalEntry.created_at).desc(), col(JournalEntry.id).desc())
        ).all()
    assert len(expected) == 6  # a settlement and a release per order
    assert [entry["id"] for entry in seen] == list(expected)  # no duplicate, no gap, in order
    assert pages == 3
    stamps = [entry["created_at"] for entry in seen]
    assert stamps == sorted(stamps, reverse=True)

    for entry in seen:
        postings = {(p["kind"], p["amount"]) for p in entry["postings"]}
        if entry["kind"] == "settlement":  # only the merchant's own leg, credit-positive
            assert postings == {("merchant_pending", NET)}
        else:
            assert entry["kind"] == "funds_released"
            assert postings == {("merchant_pending", -NET), ("merchant_available", NET)}
        assert all(p["account"].endswith(f":{merchant_id}:CNY") for p in entry["postings"])


async def test_the_ledger_filters_by_currency_and_refuses_a_foreign_cursor(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id, other_id = await create_merchant(api), await create_merchant(api)
    await _completed_order(api, sandbox, merchant_id)
    await _completed_order(api, sandbox, other_id)
    path = f"/v1/merchants/{merchant_id}/ledger"

    assert (await _get(api, path, currency="CNY"))["has_more"] is False
    assert len((await _get(api, path, currency="CNY"))["data"]) == 2
    assert (await _get(api, path, currency="USD"))["data"] == []

    others = await _get(api, f"/v1/merchants/{other_id}/ledger")
    foreign = await api.get(path, params={"starting_after": others["data"][0]["id"]})
    _assert_error(foreign, 400, "cursor_invalid", "starting_after")
    bad_currency = await api.get(path, params={"currency": "cny"})
    assert bad_currency.status_code == 400
    assert bad_currency.json()["error"]["param"] == "currency"


# -- statements and payouts ------------------------------------------------------------


async def test_a_statement_reconciles_to_the_orders_it_covers(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    plain = await _completed_order(api, sandbox, merchant_id)
    # Refunded while pending, then received: the release falls short by the refund.
    held = await _held_order(api, sandbox, merchant_id)
    early = await _refund(api, held, 1000)
    confirmed = await api.post(f"/v1/orders/{held}/confirm-receipt")
    assert confirmed.status_code == 200, confirmed.text
    # Refunded after completion: taken from available, a covered entry of its own.
    late_order = await _completed_order(api, sandbox, merchant_id)
    late = await _refund(api, late_order, 500)

    with Session(system.engine) as session, session.begin():
        made = prepare_statement(
            session, merchant_id, "CNY", datetime.now(UTC).date(), datetime.now(UTC)
        )
        assert made is not None
        statement_id = made.id
    assert ":" in statement_id

    statement = await _get(api, f"/v1/statements/{statement_id}")

    early_part, late_part = early["parts"]["merchant_net"], late["parts"]["merchant_net"]
    assert (statement["merchant_id"], statement["currency"]) == (merchant_id, "CNY")
    assert statement["order_count"] == 3
    assert statement["gross_amount"] == 3 * PAYABLE
    assert statement["channel_fee_amount"] == 3 * FEE
    assert statement["commission_amount"] == 3 * COMMISSION
    assert statement["refunded_amount"] == early_part + late_part
    assert statement["opening_balance"] == 0
    assert statement["payout_amount"] == 3 * NET - early_part - late_part
    assert statement["closing_balance"] == 0
    s = statement
    assert (
        s["opening_balance"]
        + s["gross_amount"]
        - s["channel_fee_amount"]
        - s["commission_amount"]
        - s["refunded_amount"]
        + s["returned_amount"]
        - s["payout_amount"]
        == s["closing_balance"]
    )

    orders = {line["order_id"]: line for line in statement["orders"]}
    assert set(orders) == {plain, held, late_order}
    assert orders[held]["refunded_before_release"] == early_part
    assert orders[held]["released"] == NET - early_part
    assert orders[plain] == {
        "order_id": plain,
        "gross": PAYABLE,
        "channel_fee": FEE,
        "commission": COMMISSION,
        "refunded_before_release": 0,
        "released": NET,
        "fx": None,  # paid in its price currency: no quote
    }
    lines = statement["orders"]
    refunded_before = sum(line["refunded_before_release"] for line in lines)
    assert sum(line["released"] for line in lines) == (
        s["gross_amount"] - s["channel_fee_amount"] - s["commission_amount"] - refunded_before
    )
    other = {(e["kind"], e["order_id"]): e["amount"] for e in statement["entries"]}
    assert other == {
        ("refund_reserved", late_order): -late_part,
        ("payout_started", None): -s["payout_amount"],
    }

    payout = statement["payout"]
    assert payout["statement_id"] == statement_id
    assert (payout["amount"], payout["status"], payout["currency"]) == (
        s["payout_amount"],
        "pending",
        "CNY",
    )
    assert payout["failure_reason"] is None and payout["bank_reference"] is None
    assert await _get(api, f"/v1/payouts/{payout['id']}") == payout

    listed = await _get(api, f"/v1/merchants/{merchant_id}/statements")
    assert [item["id"] for item in listed["data"]] == [statement_id]
    assert listed["data"][0] == {k: v for k, v in statement.items() if k in listed["data"][0]}
    assert await _balances(api, merchant_id) == _cny(in_transit=s["payout_amount"])


# -- operators ---------------------------------------------------------------------------


async def test_the_trial_balance_sums_to_zero_in_every_currency(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    await _completed_order(api, sandbox, merchant_id)

    body = await _get(api, "/v1/ledger/trial-balance")

    assert body["balanced"] is True
    assert body["drift"] == []
    assert "CNY" in {c["currency"] for c in body["currencies"]}
    assert all(c["total"] == 0 for c in body["currencies"])
    mine = {a["id"]: a["balance"] for a in body["accounts"] if a["owner"] == merchant_id}
    assert mine == {
        f"merchant_pending:{merchant_id}:CNY": 0,
        f"merchant_available:{merchant_id}:CNY": NET,
    }


async def test_accounts_are_listed_filtered_and_paged_by_id(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    await _completed_order(api, sandbox, merchant_id)
    available = f"merchant_available:{merchant_id}:CNY"

    mine = await _get(api, "/v1/ledger/accounts", owner=merchant_id)
    assert [a["id"] for a in mine["data"]] == sorted(
        [available, f"merchant_pending:{merchant_id}:CNY"]
    )
    assert mine["has_more"] is False

    first = await _get(api, "/v1/ledger/accounts", owner=merchant_id, limit=1)
    assert first["has_more"] is True
    rest = await _get(
        api, "/v1/ledger/accounts", owner=merchant_id, limit=1, starting_after=first["next_cursor"]
    )
    assert [a["id"] for a in first["data"] + rest["data"]] == [a["id"] for a in mine["data"]]
    assert rest["has_more"] is False and rest["next_cursor"] is None

    only = await _get(
        api, "/v1/ledger/accounts", kind="merchant_available", owner=merchant_id, currency="CNY"
    )
    assert only["data"] == [
        {
            "id": available,
            "kind": "merchant_available",
            "owner": merchant_id,
            "currency": "CNY",
            "balance": NET,
            "debit_balance": -NET,
        }
    ]
    clearing = await _get(api, "/v1/ledger/accounts", kind="channel_clearing", limit=100)
    assert clearing["data"] and all(a["kind"] == "channel_clearing" for a in clearing["data"])
    assert all(a["balance"] == a["debit_balance"] for a in clearing["data"])  # an asset

    bad_kind = await api.get("/v1/ledger/accounts", params={"kind": "piggy_bank"})
    assert bad_kind.status_code == 400 and bad_kind.json()["error"]["param"] == "kind"
    for limit in (0, 101):
        bad_limit = await api.get("/v1/ledger/accounts", params={"limit": limit})
        assert bad_limit.status_code == 400 and bad_limit.json()["error"]["param"] == "limit"


async def test_an_account_shows_its_postings_newest_first(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient
) -> None:
    merchant_id = await create_merchant(api)
    orders = [await _completed_order(api, sandbox, merchant_id) for _ in range(2)]
    pending = f"merchant_pending:{merchant_id}:CNY"

    body = await _get(api, f"/v1/ledger/accounts/{pending}", limit=3)

    assert body["account"]["id"] == pending and body["account"]["balance"] == 0
    page = body["postings"]
    assert page["has_more"] is True
    last = await _get(
        api, f"/v1/ledger/accounts/{pending}", limit=3, starting_after=page["next_cursor"]
    )
    postings = page["data"] + last["postings"]["data"]
    assert last["postings"]["has_more"] is False
    assert [(p["order_id"], p["entry_kind"], p["amount"]) for p in postings] == [
        (orders[1], "funds_released", -NET),
        (orders[1], "settlement", NET),
        (orders[0], "funds_released", -NET),
        (orders[0], "settlement", NET),
    ]
    assert all(p["debit_amount"] == -p["amount"] for p in postings)


# -- not found ----------------------------------------------------------------------------


async def test_unknown_things_are_404_with_the_error_shape(api: httpx.AsyncClient) -> None:
    cases = {
        "/v1/merchants/mer_nobody/balances": ("merchant_not_found", "merchant_id"),
        "/v1/merchants/mer_nobody/ledger": ("merchant_not_found", "merchant_id"),
        "/v1/merchants/mer_nobody/statements": ("merchant_not_found", "merchant_id"),
        "/v1/statements/mer_nobody:2024-01-01:CNY": ("statement_not_found", "statement_id"),
        "/v1/payouts/po-mer_nobody-2024-01-01-CNY": ("payout_not_found", "payout_id"),
        "/v1/ledger/accounts/merchant_available:mer_nobody:CNY": (
            "account_not_found",
            "account_id",
        ),
    }
    for path, (code, param) in cases.items():
        response = await api.get(path)
        _assert_error(response, 404, code, param)
        assert response.json()["error"]["type"] == "not_found_error"
