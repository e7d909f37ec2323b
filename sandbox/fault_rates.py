"""Faults at a rate, for chaos runs: channel API calls that fail or answer slowly, and
notifications that are dropped, duplicated or delayed.

`/control/faults/{out_trade_no}` fails the next N calls about one order; a chaos run
wants faults spread over thousands of orders without naming them, so this module keeps
a `FaultRates` plan (set with `PUT /control/fault-rates`) and draws against it:

    a channel API call   -> answered 503 (error_rate), or held slow_ms first (slow_rate)
    a notification sent  -> dropped, duplicated or delayed by delay_ms, at their rates

It counts what it injected (`GET /control/fault-rates`), so a run can report it. Both
the plan and the counts live in memory: a restarted sandbox injects nothing until the
plan is set again, as with every other control.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from channels.base import ChannelName
from sandbox.notifier import DeliveryMode

Rate = float  # a probability, 0..1 (not money)

# Where each channel's API (what our worker calls) is served; the buyer's pages are not.
_API_PREFIXES: dict[ChannelName, tuple[str, ...]] = {
    ChannelName.ALIPAY: ("/alipay/gateway.do",),
    ChannelName.WECHATPAY: ("/wechatpay/v3/",),
    ChannelName.CARD: ("/card/v1/",),
}


class ChannelFaultRates(BaseModel):
    error_rate: Rate = Field(default=0.0, ge=0, le=1)  # answered 503
    slow_rate: Rate = Field(default=0.0, ge=0, le=1)  # answered after slow_ms
    slow_ms: int = Field(default=0, ge=0, le=60_000)


class NotifyFaultRates(BaseModel):
    drop_rate: Rate = Field(default=0.0, ge=0, le=1)
    duplicate_rate: Rate = Field(default=0.0, ge=0, le=1)
    delay_rate: Rate = Field(default=0.0, ge=0, le=1)
    delay_ms: int = Field(default=0, ge=0, le=600_000)


class FaultRates(BaseModel):
    channels: dict[ChannelName, ChannelFaultRates] = {}
    notify: NotifyFaultRates = NotifyFaultRates()
    seed: int | None = None  # the same seed draws the same sequence of faults


class FaultRatesView(BaseModel):
    rates: FaultRates
    injected: dict[str, int]  # by kind: "alipay.error", "card.slow", "notify.drop", ...


class FaultInjector:
    """Draws faults against the current plan and counts what it injected."""

    def __init__(self) -> None:
        self.rates = FaultRates()
        self.injected: Counter[str] = Counter()
        self._draws: dict[str, random.Random] = {}

    def set_rates(self, rates: FaultRates) -> None:
        self.rates = rates
        self._draws = {}

    def _draw(self, stream: str) -> float:
        """A draw from `stream`'s own sequence (one per channel, one for notifications):
        how often alipay fails does not hang on how many card calls came first."""
        if stream not in self._draws:
            seed = None if self.rates.seed is None else f"{self.rates.seed}-{stream}"
            self._draws[stream] = random.Random(seed)
        return self._draws[stream].random()

    def api_fault(self, path: str) -> tuple[str, ChannelFaultRates] | None:
        """ "error" or "slow" (with the channel's rates) for a call to `path`, or None."""
        channel = channel_of(path)
        rates = self.rates.channels.get(channel) if channel else None
        if channel is None or rates is None:
            return None
        draw = self._draw(channel)
        if draw < rates.error_rate:
            kind = "error"
        elif draw < rates.error_rate + rates.slow_rate:
            kind = "slow"
        else:
            return None
        self.injected[f"{channel}.{kind}"] += 1
        return kind, rates

    def notification(self, mode: DeliveryMode, delay_ms: int) -> tuple[DeliveryMode, int]:
        """The delivery mode for a notification the sandbox would send as `mode`: a mode a
        control asked for is kept; a normal one may become a drop, a duplicate or a delay."""
        if mode is not DeliveryMode.NORMAL:
            return mode, delay_ms
        rates = self.rates.notify
        draw = self._draw("notify")
        for fault, rate in (
            (DeliveryMode.DROP, rates.drop_rate),
            (DeliveryMode.DUPLICATE, rates.duplicate_rate),
            (DeliveryMode.DELAY, rates.delay_rate),
        ):
            if draw < rate:
                self.injected[f"notify.{fault}"] += 1
                return fault, rates.delay_ms
            draw -= rate
        return mode, delay_ms


def channel_of(path: str) -> ChannelName | None:
    for channel, prefixes in _API_PREFIXES.items():
        if path.startswith(prefixes):
            return channel
    return None


def install_fault_injection(app: FastAPI, injector: FaultInjector) -> None:
    """Answer channel API calls with the injector's faults, before any route runs."""
    app.add_middleware(_FaultInjection, injector=injector)


class _FaultInjection:
    """A plain ASGI middleware: Starlette's `BaseHTTPMiddleware` (`@app.middleware`) runs
    every request's body and response through a task group and streams of its own, which
    was half of the sandbox's CPU on a bench order."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self.injector.api_fault(scope["path"]) if scope["type"] == "http" else None
        if fault is not None:
            kind, rates = fault
            if kind == "error":
                body = {"error": {"code": "unavailable", "message": "injected fault"}}
                await JSONResponse(body, status_code=503)(scope, receive, send)
                return
            await asyncio.sleep(rates.slow_ms / 1000)
        await self.app(scope, receive, send)
