"""The bench's callback storm on a running system, small: a paid order's genuine payment
notification sent again and again beside a forgery of it, open loop, every answer the one
a channel expects (the duplicate acknowledged, the forgery refused) and nothing else."""

from __future__ import annotations

import os

import httpx
import pytest

from bench.callbacks import forged, storm
from bench.probes import notification
from tests.conftest import System
from tests.support import create_merchant, create_order, wait_status


@pytest.mark.parametrize("system", ["sqlite"], indirect=True)  # the route, not the database
async def test_a_storm_of_duplicates_and_forgeries_gets_only_the_expected_answers(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    order = await create_order(api, await create_merchant(api), channel="alipay")
    paid = await sandbox.post(
        f"/control/payments/{order['id']}/pay", params={"channel": "alipay"}, json={}
    )
    assert paid.status_code == 200, paid.text
    await wait_status(api, order["id"], "completed")
    deliveries = (await sandbox.get(f"/control/payments/{order['id']}/deliveries")).json()
    saved = dict(os.environ)
    try:  # the sandbox's protocol reads its keys from the environment
        body, headers = notification(system.env, deliveries[0]["event_id"], paid.json())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    genuine = (body, headers, True)

    figures = await storm(api, "/v1/channels/alipay/notify", [genuine, forged(genuine)], 40, 1)

    assert (figures.sent, figures.errors) == (40, 0)
    assert figures.answers.get(200) == 20  # each duplicate acknowledged
    refused = sum(count for status, count in figures.answers.items() if 400 <= status < 500)
    assert refused == 20  # each forgery refused
    assert len(figures.latencies_s) == 40 and max(figures.latencies_s) > 0
