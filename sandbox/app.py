"""The sandbox service: `uvicorn --factory sandbox.app:create_app`.

Each channel is simulated over its real protocol at its own base path
(`/alipay/gateway.do`, `/wechatpay/v3/...`, `/card/v1/...`) with its own key
material from settings; the bank at `/bank` (payouts, and the channels' settlements
into our account); the buyer's pages and the test controls beside them. Each channel
also publishes its daily bill over its real API (`sandbox.bills`, planted
discrepancies at `/control/bills`). The lifespan owns the one outgoing HTTP client
(for notifications), the notifier's tasks, the payout settlement timers and the
channels' settlement check, so that shutdown cancels work still in flight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from channels.base import ChannelName
from logs import configure_logging
from sandbox import (
    alipay_bills,
    alipay_front,
    bills_control,
    card_front,
    cashier,
    control,
    fault_rates_control,
    payout_api,
    sweep_api,
    wechatpay_bills,
    wechatpay_certs,
    wechatpay_front,
)
from sandbox.bank_notify import BankNotifications
from sandbox.bills import BillDesk
from sandbox.errors import install_error_handlers
from sandbox.fault_rates import FaultInjector, install_fault_injection
from sandbox.notifier import Notifier, NotifyProtocol
from sandbox.payout_service import PayoutService
from sandbox.service import SandboxService
from sandbox.store import Store
from sandbox.sweep_service import SweepService
from settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    if settings.sandbox_keys is None:
        raise RuntimeError("the sandbox needs PAYSAGA_SANDBOX_KEYS__* (see stack.py)")
    protocols: dict[ChannelName, NotifyProtocol] = {
        ChannelName.ALIPAY: alipay_front.notifications(settings),
        ChannelName.WECHATPAY: wechatpay_front.notifications(settings),
        ChannelName.CARD: card_front.notifications(settings),
    }
    bank_secret = settings.sandbox_webhook_secret.get_secret_value().encode()
    bank_notifications = BankNotifications(bank_secret)
    by_name = {p.name: p for p in (*protocols.values(), bank_notifications)}
    faults = FaultInjector()  # none until a chaos run sets its rates

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("sandbox", settings.log_format)
        store = Store(Path(settings.sandbox_store_path) if settings.sandbox_store_path else None)
        async with httpx.AsyncClient(timeout=settings.channel_timeout_seconds) as client:
            notifier = Notifier(
                client,
                time_scale=settings.sandbox_time_scale,
                record=store.record_delivery,
                faults=faults.notification,
                outbox=store,
            )
            notifier.resume(store.held_notices(), by_name)  # owed from before a restart
            app.state.service = SandboxService(
                store, notifier, settings.sandbox_base_url, protocols
            )
            app.state.bills = BillDesk(store, settings.channel_fee_rates)
            payouts = PayoutService(
                store,
                notifier,
                bank_notifications,
                delay_ms=settings.sandbox_payout_delay_ms,
            )
            app.state.payouts = payouts
            sweeps = SweepService(
                store,
                settings.channel_fee_rates,
                settings.channel_sweep_lag_days,
                settings.sandbox_sweep_check_seconds,
            )
            app.state.sweeps = sweeps
            sweeps.start()
            try:
                yield
            finally:
                await sweeps.aclose()
                await payouts.aclose()  # first: a timer may still hand the notifier an event
                await notifier.aclose()

    app = FastAPI(title="paysaga sandbox channels", lifespan=lifespan)
    app.state.settings = settings
    app.state.api_key = settings.sandbox_api_key  # the bank's
    app.state.fault_injector = faults
    install_error_handlers(app)
    install_fault_injection(app, faults)
    app.include_router(alipay_front.router)
    app.include_router(alipay_bills.router)
    app.include_router(wechatpay_front.router)
    app.include_router(wechatpay_bills.router)
    app.include_router(wechatpay_certs.router)
    app.include_router(card_front.router)
    app.include_router(payout_api.router)
    app.include_router(sweep_api.bank_router)
    app.include_router(sweep_api.control_router)
    app.include_router(cashier.router)
    app.include_router(control.router)
    app.include_router(bills_control.router)
    app.include_router(fault_rates_control.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
