"""Traces: an order request is one trace, from the API's route through Temporal to the worker's
call to the channel and the database; without a collector nothing is set up at all.

The system's API and worker are subprocesses whose spans this process cannot see, so the
API app and a worker run here, built as `make run` builds them but with an in-memory
exporter, on their own task queue and database, against the session's real Temporal
server and the system's real sandbox channel.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from api.app import create_app
from api.auth.tokens import issue_access_token, utc_now
from api.manage import create_operator
from domain.keys import order_workflow_id
from telemetry import API_SERVICE, WORKER_SERVICE, temporal_interceptors, tracer_provider
from tests.conftest import System
from tests.databases import migrated_engine
from tests.receiver import Receiver
from tests.support import create_merchant, create_order, settings_from_env
from worker import built_worker


def _ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[str]:
    """The names of the span's parents, nearest first, as far as `spans` go."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    names: list[str] = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


def _attribute(span: ReadableSpan, *names: str) -> str:
    """The first of `names` the span has (old and new semantic conventions differ)."""
    attributes = span.attributes or {}
    return next((str(attributes[name]) for name in names if name in attributes), "")


async def test_an_order_request_is_one_trace_from_the_route_to_the_channel(
    system: System, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    traces = TracerProvider()
    traces.add_span_processor(SimpleSpanProcessor(exporter))
    database_url = f"sqlite:///{tmp_path / 'paysaga.db'}"
    migrated_engine(database_url).dispose()
    settings = settings_from_env(
        {
            **system.env,
            "PAYSAGA_DATABASE_URL": database_url,
            "PAYSAGA_TASK_QUEUE": f"traces-{secrets.token_hex(4)}",
            "PAYSAGA_WORKER_SHUTDOWN_SECONDS": "2",
        }
    )
    operator_id = create_operator(
        database_url, "ops@traces.example.com", secrets.token_urlsafe(16), "Ops"
    )
    token = issue_access_token(settings, operator_id, "operator", utc_now())
    app = create_app(settings, traces)

    async with (
        built_worker(settings, traces) as parts,
        parts.worker,
        LifespanManager(app) as running,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=running.app),
            base_url="http://api.test",
            headers={"Authorization": f"Bearer {token}"},
        ) as api,
    ):
        merchant_id = await create_merchant(api)
        exporter.clear()
        order = await create_order(api, merchant_id, channel="alipay")
        spans = exporter.get_finished_spans()
        # The saga goes on waiting for a payment that no one makes.
        await parts.client.get_workflow_handle(order_workflow_id(order["id"])).terminate()

    assert {span.context.trace_id for span in spans if span.context} != set()
    assert len({span.context.trace_id for span in spans if span.context}) == 1, [
        span.name for span in spans
    ]
    names = [span.name for span in spans]
    [request] = [s for s in spans if s.name == "POST /v1/orders" and s.kind == SpanKind.SERVER]
    [start] = [s for s in spans if s.name == "StartUpdateWithStartWorkflow:OrderWorkflow"]
    [activity] = [s for s in spans if s.name == "RunActivity:record_and_create_payment"]
    channel_calls = [
        s
        for s in spans
        if s.kind == SpanKind.CLIENT
        and _attribute(s, "url.full", "http.url").startswith(system.sandbox_url)
    ]
    sql = [s for s in spans if _attribute(s, "db.system.name", "db.system") == "sqlite"]

    assert "POST /v1/orders" in _ancestors(start, spans)
    assert "POST /v1/orders" in _ancestors(activity, spans), names
    assert channel_calls, names
    assert all(
        "RunActivity:record_and_create_payment" in _ancestors(s, spans) for s in channel_calls
    )
    assert sql, names
    assert any(request.name in _ancestors(s, spans) for s in sql)  # the API's own queries
    assert any(activity.name in _ancestors(s, spans) for s in sql)  # the activity's


def test_without_a_collector_nothing_is_installed(channel_credentials: dict[str, str]) -> None:
    settings = settings_from_env(channel_credentials)
    assert settings.otlp_endpoint == ""
    for service in (API_SERVICE, WORKER_SERVICE):
        assert tracer_provider(settings, service) is None
    assert temporal_interceptors(None) == []
    app = create_app(settings)  # as uvicorn makes it: no server span around its routes
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    # Nor is any provider installed for the process: whatever asks for a tracer gets a no-op.
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)


async def test_with_a_collector_spans_go_to_it_named_for_their_service(
    channel_credentials: dict[str, str], receiver: Receiver
) -> None:
    collector = receiver.inbox()
    settings = settings_from_env({**channel_credentials, "PAYSAGA_OTLP_ENDPOINT": collector.url})
    provider = tracer_provider(settings, WORKER_SERVICE)
    assert provider is not None
    assert len(temporal_interceptors(provider)) == 1
    with provider.get_tracer("test").start_as_current_span("settle the day"):
        pass
    provider.shutdown()  # sends what is batched, as the worker does when it stops

    [sent] = await collector.received()
    assert sent.headers["content-type"] == "application/x-protobuf"
    export = ExportTraceServiceRequest.FromString(sent.body)
    [resource_spans] = export.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "paysaga-worker"
    assert [span.name for scope in resource_spans.scope_spans for span in scope.spans] == [
        "settle the day"
    ]
