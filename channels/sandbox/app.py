"""The sandbox service: `uvicorn --factory channels.sandbox.app:create_app`.

The lifespan owns the one outgoing HTTP client (for notifications), the
notifier's tasks and the payout settlement timers, so that shutdown cancels
work still in flight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from channels.sandbox import api, cashier, control, payout_api
from channels.sandbox.errors import install_error_handlers
from channels.sandbox.notifier import Notifier
from channels.sandbox.payout_service import PayoutService
from channels.sandbox.service import SandboxService
from channels.sandbox.store import Store
from settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(Path(settings.sandbox_store_path) if settings.sandbox_store_path else None)
        async with httpx.AsyncClient(timeout=settings.channel_timeout_seconds) as client:
            notifier = Notifier(
                client,
                settings.sandbox_webhook_secret.get_secret_value().encode(),
                retry_base_ms=settings.sandbox_notify_retry_base_ms,
                max_attempts=settings.sandbox_notify_max_attempts,
                record=store.record_delivery,
            )
            app.state.service = SandboxService(store, notifier, settings.sandbox_base_url)
            payouts = PayoutService(store, notifier, delay_ms=settings.sandbox_payout_delay_ms)
            app.state.payouts = payouts
            try:
                yield
            finally:
                await payouts.aclose()  # first: a timer may still hand the notifier an event
                await notifier.aclose()

    app = FastAPI(title="paysaga sandbox channel", lifespan=lifespan)
    app.state.api_key = settings.sandbox_api_key
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(payout_api.router)
    app.include_router(cashier.router)
    app.include_router(control.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
