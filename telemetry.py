"""Traces: one trace per request, from the API through Temporal to the worker's activities,
their calls to the channels and the database, exported over OTLP.

`PAYSAGA_OTLP_ENDPOINT` names the collector. Unset, `tracer_provider` answers None and every
helper here does nothing: no provider, no instrumentation, no interceptor, not even an import
of the SDK or an instrumentation, so a process runs as it would without tracing. The provider
is passed to each instrumentation rather than installed globally, so a test can give the API
and a worker in one process its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the instrumentation is imported only when a collector is set
    from fastapi import FastAPI
    from httpx import AsyncClient
    from opentelemetry.sdk.trace import TracerProvider
    from sqlalchemy import Engine
    from temporalio.client import Interceptor

    from settings import Settings

API_SERVICE = "paysaga-api"
WORKER_SERVICE = "paysaga-worker"


def tracer_provider(settings: Settings, service_name: str) -> TracerProvider | None:
    """The process's provider, batching spans to the OTLP collector; None when none is set."""
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    endpoint = f"{settings.otlp_endpoint.rstrip('/')}/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def temporal_interceptors(traces: TracerProvider | None) -> list[Interceptor]:
    """Temporal's own interceptor: on the client it carries the trace into the workflow and
    (a client interceptor is a worker's too) spans each workflow task and activity, keeping
    workflow code deterministic."""
    if traces is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(traces.get_tracer("temporalio"))]


def trace_app(app: FastAPI, traces: TracerProvider | None) -> None:
    """A server span for every request (named by its route: `POST /v1/orders`). Before the
    app first runs: the instrumentation wraps the middleware stack Starlette then builds."""
    if traces is not None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=traces)


def trace_http(client: AsyncClient, traces: TracerProvider | None) -> None:
    """A client span for every request the client sends (to a channel, the bank, a merchant),
    with the trace's context in its headers."""
    if traces is not None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=traces)


def trace_engine(engine: Engine, traces: TracerProvider | None) -> None:
    """A span for every statement on the engine. Per engine (not the instrumentor's one
    process-wide patch, which takes one provider and ignores a second engine's)."""
    if traces is None:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeterProvider

    tracer = traces.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    connections = (
        NoOpMeterProvider()
        .get_meter("paysaga")
        .create_up_down_counter("db.client.connections.usage")
    )
    EngineTracer(tracer, engine, connections)  # type: ignore[no-untyped-call]
