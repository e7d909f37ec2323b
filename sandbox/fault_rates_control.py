"""Controls of the faults injected at a rate (`fault_rates`): set the plan, read the counts.

Like every control, these want the sandbox's API key.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from sandbox.deps import require_api_key
from sandbox.fault_rates import FaultInjector, FaultRates, FaultRatesView

router = APIRouter(
    prefix="/control/fault-rates", tags=["control"], dependencies=[Depends(require_api_key)]
)


def _injector(request: Request) -> FaultInjector:
    injector: FaultInjector = request.app.state.fault_injector
    return injector


@router.put("")
async def set_fault_rates(rates: FaultRates, request: Request) -> FaultRatesView:
    injector = _injector(request)
    injector.set_rates(rates)
    return FaultRatesView(rates=injector.rates, injected=dict(injector.injected))


@router.get("")
async def read_fault_rates(request: Request) -> FaultRatesView:
    injector = _injector(request)
    return FaultRatesView(rates=injector.rates, injected=dict(injector.injected))
