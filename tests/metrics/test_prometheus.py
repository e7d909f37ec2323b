"""Our metrics through a real Prometheus server (Debian's `prometheus`), scraping the
test system's API and worker every second with our rules loaded: a paid order shows up
in what Prometheus answers, the Temporal SDK's metrics with it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import stack
from tests.conftest import System
from tests.metrics.test_rules import RULE_FILES
from tests.support import (
    create_merchant,
    create_order,
    http_client,
    pay,
    scraped,
    wait_for,
    wait_status,
)


@contextmanager
def prometheus_scraping(directory: Path, targets: dict[str, str]) -> Iterator[str]:
    """A Prometheus scraping `targets` (job -> host:port) every second; yields its URL.
    It starts at once; its readiness is for the caller's queries to wait on."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: `make prometheus` installs Debian's package"
    config = {  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    (directory / "prometheus.yml").write_text(json.dumps(config))
    port = stack.free_port()
    command = [
        binary,
        f"--config.file={directory / 'prometheus.yml'}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    processes = stack.Stack(env={})
    processes.start("prometheus", command, directory / "prometheus.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop()


async def _query(client: httpx.AsyncClient, promql: str) -> list[dict[str, Any]] | None:
    """The instant vector Prometheus answers, or None while it is not up yet."""
    try:
        response = await client.get("/api/v1/query", params={"query": promql})
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def _value(result: list[dict[str, Any]] | None) -> float | None:
    return float(result[0]["value"][1]) if result else None


@pytest.mark.parametrize("system", ["sqlite"], indirect=True)  # one database shows it
async def test_prometheus_reads_a_paid_order_from_the_api_and_the_worker(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, tmp_path: Path
) -> None:
    worker = f"127.0.0.1:{system.env['PAYSAGA_WORKER_METRICS_PORT']}"
    paid = {"channel": "card", "outcome": "succeeded"}
    paid_before = await scraped(f"http://{worker}/metrics", "paysaga_payments_total", **paid)
    targets = {"paysaga-api": system.api_url.removeprefix("http://"), "paysaga-worker": worker}

    with prometheus_scraping(tmp_path, targets) as prometheus:
        merchant_id = await create_merchant(api)
        order = await create_order(api, merchant_id, channel="card", currency="EUR")
        await pay(sandbox, order["id"])
        await wait_status(api, order["id"], "completed")

        async with http_client(prometheus) as client:

            async def value(promql: str) -> float | None:
                return _value(await _query(client, promql))

            async def answered(promql: str, accept: Any) -> None:
                await wait_for(
                    lambda: value(promql), lambda v: v is not None and accept(v), promql, 10
                )

            await answered('count(up{job=~"paysaga-api|paysaga-worker"} == 1)', lambda v: v == 2)
            await answered(
                'sum(paysaga_payments_total{channel="card", outcome="succeeded"})',
                lambda v: v >= paid_before + 1,
            )
            await answered(
                'sum(paysaga_payments_amount_minor_total{channel="card", currency="EUR"})',
                lambda v: v >= order["amounts"]["payable"],
            )
            await answered(
                'sum(paysaga_orders_finished_total{channel="card", status="completed"})',
                lambda v: v >= 1,
            )
            await answered(  # the sandbox told the API, which took it
                'sum(paysaga_channel_notifications_total{channel="card", outcome="accepted"})',
                lambda v: v >= 1,
            )
            await answered(
                'sum(paysaga_http_request_duration_seconds_count{method="POST",'
                ' route="/v1/orders", status="201"})',
                lambda v: v >= 1,
            )
            await answered(  # the Temporal SDK's own, through the worker's endpoint
                'sum(temporal_num_pollers{poller_type="workflow_task"})', lambda v: v >= 1
            )
            await answered("max(abs(paysaga_ledger_trial_balance_minor))", lambda v: v == 0)
            rules = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            unhealthy = [
                (rule["name"], rule.get("lastError"))
                for group in rules
                for rule in group["rules"]
                if rule["health"] == "err"
            ]
            assert len(rules) == 2 and unhealthy == []
