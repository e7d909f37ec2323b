"""A quoted card order's FX is realised when the card gateway settles: a CNY shop's order
paid in a foreign currency, swept into our bank in CNY at a rate above the quote (a
realised gain) or below it (a loss). After each: the FX positions of the order are flat,
its presentment clearing is empty, the trial balance is zero in every currency, the
books reconcile, and the FX report shows the day's gain or loss for the card.

Each case owns a presentment currency no other test pays the card in (SGD, AUD), so the
card's converted transfer of that currency today is this test's alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.client import Client

from db.fx_books import order_sums
from db.reconcile import Scope, ledger_problems, trial_balance
from db.tables import FxRealisation
from domain.sweeps import ChannelSweepResult
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    pay,
    settings_from_env,
    wait_for,
    wait_status,
)
from workflows.sweep_schedule import start_channel_sweep


def _order_sums(system: System, order_id: str) -> dict[str, int]:
    with Session(system.engine) as session:
        return {account: total for account, total in order_sums(session, order_id).items() if total}


def _realisations(system: System, order_id: str) -> list[FxRealisation]:
    with Session(system.engine) as session:
        rows = session.exec(select(FxRealisation).where(FxRealisation.order_id == order_id))
        return list(rows.all())


@pytest.mark.parametrize(("presentment", "move"), [("SGD", "1.10"), ("AUD", "0.90")])
async def test_the_card_settling_a_quoted_order_realises_its_fx(
    api: httpx.AsyncClient,
    sandbox: httpx.AsyncClient,
    system: System,
    temporal: Client,
    presentment: str,
    move: str,
) -> None:
    today = datetime.now(UTC).date()
    merchant_id = await create_merchant(api)
    terms = await api.put(f"/v1/merchants/{merchant_id}/fx-terms", json={"fx_markup_bps": 100})
    assert terms.status_code == 200, terms.text
    order = await create_order(api, merchant_id, channel="card", presentment_currency=presentment)
    quote = order["quote"]
    # CNY per presentment unit the buyer was charged at (both currencies have 2 decimals),
    # moved 10% up or down: far more than the markup, so the sign of the result is known.
    quoted = Decimal(quote["price_amount"]) / Decimal(quote["presentment_amount"])
    rate = (quoted * Decimal(move)).quantize(Decimal("0.00000001"))
    body = {"currency": presentment, "settle_currency": "CNY", "rate": str(rate)}
    assert (await sandbox.put("/control/fx/settlement-rate", json=body)).status_code == 200
    assert (
        await sandbox.put("/control/fx/settlement-rate", json=body | {"currency": "x"})
    ).status_code == 400

    await pay(sandbox, order["id"])
    await wait_status(api, order["id"], "completed")
    settled = await sandbox.post(f"/control/sweeps/card/{today.isoformat()}")
    assert settled.status_code == 200, settled.text
    [transfer] = [
        t for t in settled.json() if (t["conversion"] or {}).get("source_currency") == presentment
    ]
    assert transfer["currency"] == "CNY" and Decimal(transfer["conversion"]["rate"]) == rate
    converted = transfer["conversion"]["orders"][order["id"]]

    results: list[ChannelSweepResult] = []

    async def swept() -> list[FxRealisation]:
        # The card's day may be swept by another test's run already: a finished run is
        # started again, and it posts what the bank shows now (each posting keyed).
        handle = await start_channel_sweep(temporal, settings_from_env(system.env), "card", today)
        results.append(await handle.result())
        return _realisations(system, order["id"])

    [realised] = await wait_for(swept, lambda r: len(r) == 1, "the order's FX realised")
    # The fee check is like for like: the gateway's fee on the buyer's money, converted at
    # the transfer's rate, against ours on the same money converted the same way (not our
    # fee booked in CNY on the price at the quote's rate).
    [outcome] = [t for t in results[-1].transfers if t.transfer_id == transfer["transfer_id"]]
    assert outcome.taken_currency == presentment and outcome.currency == "CNY"
    assert outcome.fees == transfer["fees"] > 0
    assert outcome.booked_fees == outcome.fees
    assert presentment not in results[-1].fee_differences
    assert realised.settled_amount == converted
    assert realised.presentment_amount == quote["presentment_amount"]
    if Decimal(move) > 1:
        assert realised.gain_loss_amount > 0
    else:
        assert realised.gain_loss_amount < 0

    sums = _order_sums(system, order["id"])
    assert sums.get(f"fx_position:platform:{presentment}", 0) == 0
    assert sums.get("fx_position:platform:CNY", 0) == 0
    assert sums.get(f"fx_markup_revenue:platform:{presentment}", 0) == 0
    assert sums.get(f"channel_clearing:card:{presentment}", 0) == 0
    with Session(system.engine) as session:
        assert {c: t for c, t in trial_balance(session).items() if t} == {}
        scope = Scope(order_ids=[order["id"]], accounts=[], merchant_ids=[merchant_id])
        assert ledger_problems(session, scope) == []

    report = await api.get("/v1/fx/report", params={"day": today.isoformat(), "channel": "card"})
    assert report.status_code == 200, report.text
    [line] = [
        line
        for line in report.json()["lines"]
        if (line["presentment_currency"], line["settlement_currency"]) == (presentment, "CNY")
    ]
    assert line["gain_loss_amount"] == realised.gain_loss_amount
