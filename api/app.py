"""The FastAPI application: the HTTP edge of paysaga."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from api.auth.caller import PUBLIC
from api.auth.passwords import use_cost
from api.auth.rate_limit import Throttle
from api.body_guard import BodyGuard
from api.deps import AppContext
from api.docs import install_docs
from api.errors import install_error_handlers
from api.openapi_errors import error_responses, finish_openapi
from api.order_watch import StatusWatch, statuses_from, versions_from
from api.pages.install import install_pages
from api.readiness import database_check, readiness_answer, temporal_check
from api.request_ids import RequestIds
from api.response_headers import ResponseHeaders
from api.routes import (
    api_keys,
    auth,
    coupons,
    fx,
    ledger,
    me,
    merchant_users,
    merchant_webhooks,
    merchants,
    metrics,
    notify,
    orders,
    reconciliation,
    refunds,
    reviews,
    settlements,
)
from channels.registry import build_bank, build_channels
from db.engine import make_engine, read_session_factory, session_factory
from db.secret_box import SecretBox
from logs import configure_logging
from metrics.edge import ApiMetrics, HttpMetrics
from metrics.state import DatabaseState
from settings import Settings, get_settings
from telemetry import API_SERVICE, trace_app, trace_engine, trace_http, tracer_provider
from temporal_client import connect

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


def create_app(settings: Settings | None = None, traces: TracerProvider | None = None) -> FastAPI:
    """The API. Traces go to `traces` if given (the caller shuts it down), else to the OTLP
    collector the settings name, if any (see telemetry.py)."""
    settings = settings or get_settings()
    api_metrics = ApiMetrics()  # this app's own registry, served at /metrics
    own_traces = traces is None
    if traces is None:
        traces = tracer_provider(settings, API_SERVICE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("api", settings.log_format)
        use_cost(settings.password_hash_memory_kib, settings.password_hash_time_cost)
        # At head: db.migrate ran first.
        engine = make_engine(settings.database_url, *settings.database_pool.sizes)
        trace_engine(engine, traces)
        sessions, reads = session_factory(engine), read_session_factory(engine)
        temporal = await connect(settings, traces)
        state = DatabaseState(
            reads,
            timedelta(seconds=settings.webhook_delivery_window_seconds),
            settings.metrics_state_refresh_seconds,
        )
        api_metrics.registry.register(state)
        watch = StatusWatch(
            statuses_from(reads),
            settings.order_wait_interval_ms / 1000,
            settings.order_wait_capacity,
            settings.order_wait_per_caller,
        )
        checkout_watch = StatusWatch(
            versions_from(reads),
            settings.order_wait_interval_ms / 1000,
            settings.checkout_wait_capacity,
            settings.checkout_wait_per_order,
        )
        api_metrics.count_order_waiters(lambda: watch.waiting + checkout_watch.waiting)
        async with httpx.AsyncClient(timeout=settings.channel_timeout_seconds) as http:
            trace_http(http, traces)
            app.state.context = AppContext(
                settings=settings,
                engine=engine,
                sessions=sessions,
                reads=reads,
                temporal=temporal,
                channels=build_channels(settings, http),
                bank=build_bank(settings, http),
                throttle=Throttle(
                    settings.auth_rate_per_account,
                    settings.auth_rate_per_address,
                    settings.auth_rate_storage_uri.get_secret_value(),
                    per_account=settings.auth_rate_per_account_all_addresses,
                ),
                secret_box=SecretBox(settings.data_key),
                metrics=api_metrics,
                order_watch=watch,
                checkout_watch=checkout_watch,
            )
            yield
            await watch.close()
            await checkout_watch.close()
        api_metrics.registry.unregister(state)
        engine.dispose()
        if own_traces and traces is not None:
            traces.shutdown()  # sends the spans still batched

    app = FastAPI(
        title="paysaga",
        summary="Payments and settlement for e-commerce, as durable Temporal sagas.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # api.docs serves both pages with local assets, not a CDN's
        redoc_url=None,
    )
    app.state.metrics = api_metrics
    app.add_middleware(BodyGuard, max_body_bytes=settings.max_request_body_bytes)
    app.add_middleware(HttpMetrics, metrics=api_metrics)
    trace_app(app, traces)
    install_error_handlers(app)
    app.add_middleware(RequestIds)
    app.add_middleware(ResponseHeaders)
    install_docs(app)
    finish_openapi(app)
    routers = (
        auth.router,
        me.router,
        orders.router,
        refunds.router,
        merchants.router,
        api_keys.router,
        merchant_users.router,
        merchant_webhooks.router,
        coupons.router,
        reviews.router,
        notify.router,
        settlements.router,
        reconciliation.router,
        ledger.router,
        fx.router,
        metrics.router,
    )
    for router in routers:
        app.include_router(router)
    install_pages(app)  # the dashboard and the console: HTML, not in the OpenAPI document

    @app.get("/healthz", tags=["health"], dependencies=[Depends(PUBLIC)])
    async def healthz() -> dict[str, str]:  # async: a plain def costs a thread hop (api.deps)
        """Alive: the process answers (restart it when it does not)."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        dependencies=[Depends(PUBLIC)],
        responses=error_responses(503),
    )
    async def readyz(request: Request) -> JSONResponse:
        """Ready: the database answers at the newest schema and Temporal answers; until then
        a balancer should send no traffic here (503)."""
        context: AppContext = request.app.state.context
        checks = await asyncio.gather(
            database_check(context.engine), temporal_check(context.temporal)
        )
        status, body = readiness_answer(list(checks))
        return JSONResponse(body, status_code=status)

    return app
