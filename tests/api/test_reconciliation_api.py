"""Operators start a past channel-day's reconciliation; nobody else may, and no day that
has not ended. (The run itself, its exceptions and their resolution: tests/workflows/
test_reconciliation.py.)"""

from __future__ import annotations

import secrets
from datetime import date, timedelta

import httpx
from temporalio.client import Client

from domain.reconciliation import reconciliation_workflow_id
from tests.conftest import System
from tests.identities import client_as, merchant_with_key


def _key() -> dict[str, str]:
    return {"Idempotency-Key": secrets.token_hex(8)}


async def test_an_operator_starts_a_past_day_once_and_it_shows_as_running(
    api: httpx.AsyncClient, temporal: Client
) -> None:
    # A day of its own: the Temporal server is shared by every backend's system.
    day = date(1990, 1, 1) + timedelta(days=secrets.randbelow(3000))
    body = {"channel": "wechatpay", "day": str(day)}
    first = await api.post("/v1/reconciliation/runs", json=body, headers=_key())
    again = await api.post("/v1/reconciliation/runs", json=body, headers=_key())
    assert first.status_code == again.status_code == 202, again.text
    assert first.json()["status"] == "running"
    handle = temporal.get_workflow_handle(reconciliation_workflow_id("wechatpay", day))
    description = await handle.describe()
    assert description.status is not None and description.status.name == "RUNNING"
    await handle.terminate("the test's bill never comes")  # no bill source is wired here


async def test_a_day_not_over_an_unknown_channel_or_a_missing_run_are_refused(
    api: httpx.AsyncClient,
) -> None:
    tomorrow = date.today() + timedelta(days=1)
    for body, code in [
        ({"channel": "alipay", "day": str(tomorrow)}, "day_not_over"),
        ({"channel": "paypal", "day": "2020-01-01"}, "channel_unknown"),
    ]:
        refused = await api.post("/v1/reconciliation/runs", json=body, headers=_key())
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["code"] == code
    missing = await api.get("/v1/reconciliation/runs/alipay/1980-01-01")
    assert missing.status_code == 404, missing.text
    unknown = await api.post(
        "/v1/reconciliation/exceptions/rex_nope/resolve", json={"reason": "why not"}, headers=_key()
    )
    assert unknown.status_code == 404, unknown.text
    bad_cursor = await api.get("/v1/reconciliation/exceptions", params={"starting_after": "x"})
    assert bad_cursor.status_code == 400, bad_cursor.text


async def test_a_merchant_may_not_see_or_work_the_queue(
    api: httpx.AsyncClient, system: System
) -> None:
    shop = await merchant_with_key(api)
    async with client_as(system, {"Authorization": f"Bearer {shop.api_key}"}) as merchant:
        listed = await merchant.get("/v1/reconciliation/exceptions")
        assert listed.status_code == 403, listed.text
        started = await merchant.post(
            "/v1/reconciliation/runs",
            json={"channel": "alipay", "day": "2020-01-01"},
            headers=_key(),
        )
        assert started.status_code == 403, started.text
