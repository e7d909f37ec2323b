"""The Temporal worker: the order sagas and their activities, wired to real parts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import start_http_server
from sqlalchemy import Engine
from starlette.applications import Starlette
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker

from activities.channel_calls import ChannelCalls
from activities.order_opening import OrderOpening
from activities.order_records import OrderRecords
from activities.payment_settlement import PaymentSettlement
from activities.payout_calls import PayoutCalls
from activities.reconciliation_records import (
    BillSource,
    BillSources,
    ReconciliationParts,
    ReconciliationRecords,
)
from activities.refund_records import RefundRecords
from activities.settlement_records import SettlementRecords
from activities.sweep_calls import SweepCalls
from activities.sweep_records import SweepRecords
from activities.uninterrupted import UninterruptedSyncActivities
from activities.webhook_delivery import WebhookCalls
from activities.webhook_starts import WebhookStarter
from activities.webhook_targets import WebhookTargets
from channels.base import ChannelName
from channels.bills import bill_client
from channels.registry import build_bank, build_channels
from db.engine import make_engine, session_factory
from db.secret_box import SecretBox
from domain.webhook_events import WebhookRetry
from logs import configure_logging
from metrics.business import BusinessMetrics
from metrics.reconciliation import ReconciliationMetrics
from metrics.temporal_sdk import TemporalSdkMetrics, loopback_port, sdk_runtime
from settings import Settings, get_settings
from telemetry import (
    WORKER_SERVICE,
    trace_engine,
    trace_http,
    tracer_provider,
)
from temporal_client import connect
from worker_health import health_app, serving_health
from workflows.channel_sweep import ChannelSweepsDueWorkflow, ChannelSweepWorkflow
from workflows.late_payment import LatePaymentRefundWorkflow
from workflows.merchant_webhook import MerchantWebhookWorkflow
from workflows.order import OrderWorkflow
from workflows.reconciliation import ReconciliationDayWorkflow, ReconciliationWorkflow
from workflows.reconciliation_schedule import ensure_reconciliation_schedule
from workflows.refund import RefundWorkflow
from workflows.saga_refund import SagaRefundWorkflow
from workflows.schedule import ensure_settlement_schedule
from workflows.settlement import MerchantSettlementWorkflow, SettlementRunWorkflow
from workflows.sweep_schedule import ensure_channel_sweep_schedule

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


WORKFLOWS = [
    OrderWorkflow,
    LatePaymentRefundWorkflow,
    RefundWorkflow,
    SagaRefundWorkflow,
    SettlementRunWorkflow,
    MerchantSettlementWorkflow,
    MerchantWebhookWorkflow,
    ReconciliationWorkflow,
    ReconciliationDayWorkflow,
    ChannelSweepWorkflow,
    ChannelSweepsDueWorkflow,
]


def payout_notify_url(settings: Settings) -> str:
    return f"{settings.api_public_url}/v1/payouts/notify"


def webhook_retry(settings: Settings) -> WebhookRetry:
    return WebhookRetry(
        initial_ms=settings.webhook_retry_initial_ms,
        maximum_ms=settings.webhook_retry_maximum_ms,
        window_seconds=settings.webhook_delivery_window_seconds,
    )


@contextlib.contextmanager
def serving_metrics(settings: Settings, metrics: BusinessMetrics) -> Iterator[Runtime]:
    """Serve the worker's metrics on `worker_metrics_port` (nothing when it is 0), the
    Temporal SDK's among them; yields the runtime the client must use for those."""
    if not settings.worker_metrics_port:
        yield sdk_runtime()
        return
    sdk_address = f"127.0.0.1:{loopback_port()}"
    runtime = sdk_runtime(sdk_address)
    metrics.registry.register(TemporalSdkMetrics(sdk_address))
    server, thread = start_http_server(
        settings.worker_metrics_port, settings.worker_metrics_host, registry=metrics.registry
    )
    logging.getLogger(__name__).info(
        "worker metrics at http://%s:%d/metrics",
        settings.worker_metrics_host,
        settings.worker_metrics_port,
    )
    try:
        yield runtime
    finally:
        server.shutdown()
        thread.join()


@dataclass(frozen=True)
class WorkerParts:
    """A worker wired to real parts, and what its health checks look at."""

    worker: Worker
    engine: Engine
    client: Client


def _channel_bills(settings: Settings, http: httpx.AsyncClient) -> BillSources:
    """Each channel's own bill client (channels/bills.py), at its adapter's address."""

    def source(channel: str) -> BillSource:
        return bill_client(ChannelName(channel), settings, http)

    return source


@asynccontextmanager
async def built_worker(
    settings: Settings,
    traces: TracerProvider | None = None,
    metrics: BusinessMetrics | None = None,
    runtime: Runtime | None = None,
    bill_sources: BillSources | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> AsyncIterator[WorkerParts]:
    """The worker with every workflow and activity, not yet polling (`async with
    parts.worker` runs it); its HTTP clients, executor and engine close on exit.

    `bill_sources` gives each channel's bills to reconciliation (tests pass their own);
    `interceptors` go inside the worker's own (a test's, to open a window on purpose).
    """
    metrics = metrics or BusinessMetrics()
    # At head: db.migrate ran before we started.
    engine = make_engine(settings.database_url, *settings.database_pool.sizes)
    trace_engine(engine, traces)
    sessions = session_factory(engine)
    client = await connect(settings, traces, runtime)
    timeout = httpx.Timeout(settings.channel_timeout_seconds)
    # Merchants' endpoints get their own client: their own timeout, and no redirects.
    webhook_timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with (
        httpx.AsyncClient(timeout=timeout) as http,
        httpx.AsyncClient(timeout=webhook_timeout, follow_redirects=False) as webhook_http,
    ):
        trace_http(http, traces)
        trace_http(webhook_http, traces)
        start_delivery = WebhookStarter(
            client, settings.task_queue, webhook_retry(settings), asyncio.get_running_loop()
        )
        records = OrderRecords(sessions, start_delivery, metrics)
        pairs = PaymentSettlement(records)
        calls = ChannelCalls(sessions, build_channels(settings, http), metrics)
        opening = OrderOpening(records, calls)
        refunds = RefundRecords(
            sessions, timedelta(days=settings.buyer_refund_window_days), start_delivery, metrics
        )
        targets = WebhookTargets(allow_private=settings.webhook_allow_private_targets)
        webhooks = WebhookCalls(
            sessions, webhook_http, SecretBox(settings.data_key), metrics, targets
        )
        settlement = SettlementRecords(sessions, metrics)
        bank = build_bank(settings, http)
        payouts = PayoutCalls(bank, payout_notify_url(settings))
        sweeps, sweep_calls = SweepRecords(sessions), SweepCalls(bank)
        reconciliation = ReconciliationRecords(
            sessions,
            ReconciliationParts(
                bill_sources=bill_sources or _channel_bills(settings, http),
                channels=build_channels(settings, http),
                temporal=client,
                task_queue=settings.task_queue,
                work_dir=settings.reconciliation_work_dir,
                grace=timedelta(seconds=settings.reconciliation_grace_seconds),
            ),
            ReconciliationMetrics(metrics.registry),
        )
        activities: list[Callable[..., Any]] = [
            records.record_order,
            records.record_payment,
            records.settle_order,
            records.notify_parties,
            records.release_funds,
            pairs.record_and_settle,
            pairs.notify_and_release,
            pairs.fulfil_payment,
            opening.record_and_create_payment,
            records.reverse_settlement,
            records.set_order_status,
            records.flag_for_review,
            records.order_payment_txn_id,
            records.reprice_order,
            records.record_modification,
            records.record_method_choice,
            calls.create_payment,
            calls.query_payment,
            calls.close_payment,
            calls.refund_payment,
            calls.refund_once,
            calls.check_refund,
            calls.request_refund,
            calls.query_refund,
            refunds.reserve_refund,
            refunds.complete_refund,
            refunds.fail_refund,
            settlement.merchants_to_settle,
            settlement.merchants_page,
            settlement.prepare_page,
            settlement.days_to_run_again,
            settlement.prepare_statements,
            settlement.record_payout,
            settlement.day_statements,
            payouts.send_payout,
            payouts.query_payout,
            webhooks.deliver_webhook,
            reconciliation.start_reconciliation,
            reconciliation.download_bill,
            reconciliation.match_bill,
            reconciliation.record_bill_problem,
            reconciliation.resolve_automatically,
            reconciliation.finish_reconciliation,
            sweeps.booked_day,
            sweeps.post_sweep,
            sweep_calls.incoming_transfers,
        ]
        with ThreadPoolExecutor(max_workers=32) as executor:
            worker = Worker(
                client,
                task_queue=settings.task_queue,
                workflows=WORKFLOWS,
                activities=activities,
                activity_executor=executor,
                # Workflows run without the SDK's sandbox, which imports a workflow's module
                # anew for every run and proxies its globals: measured 16% of the worker's CPU
                # over the order, refund and modification tests (649-739 against 768-886
                # ticks). The guard stays where it catches mistakes before they ship: every
                # recorded history replays in make test under the sandbox (test_replay.py),
                # which refuses a clock, randomness or I/O in workflow code.
                workflow_runner=UnsandboxedWorkflowRunner(),
                # Synchronous activities are never interrupted in their thread by a cancel
                # (one inside SQLAlchemy's pool left its lock taken: activities/uninterrupted.py).
                interceptors=[UninterruptedSyncActivities(), *interceptors],
                sticky_queue_schedule_to_start_timeout=settings.sticky_queue_timeout,
                graceful_shutdown_timeout=settings.worker_shutdown_timeout,
            )
            try:
                yield WorkerParts(worker, engine, client)
            finally:
                engine.dispose()


async def run_worker(settings: Settings) -> None:
    traces = tracer_provider(settings, WORKER_SERVICE)
    metrics = BusinessMetrics()
    try:
        with serving_metrics(settings, metrics) as runtime:
            async with built_worker(settings, traces, metrics, runtime) as parts:
                await ensure_settlement_schedule(parts.client, settings)
                await ensure_reconciliation_schedule(parts.client, settings)
                await ensure_channel_sweep_schedule(parts.client, settings)
                health = health_app(parts.worker, parts.engine, parts.client)
                await _run_until_signalled(parts.worker, health, settings)
    finally:
        if traces is not None:
            traces.shutdown()  # sends the spans still batched


async def _run_until_signalled(worker: Worker, health: Starlette, settings: Settings) -> None:
    """Poll until SIGTERM or SIGINT; then stop polling and let running activities finish
    (for up to `worker_shutdown_seconds`) before returning."""
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    log = logging.getLogger(__name__)
    port = settings.worker_health_port
    async with serving_health(health, settings.worker_health_host, port), worker:
        log.info("worker polling task queue %s (health on port %s)", settings.task_queue, port)
        await stop.wait()
        log.info("worker stopping: no new tasks, finishing the running ones")
    log.info("worker stopped")


def main() -> None:
    settings = get_settings()
    configure_logging("worker", settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
