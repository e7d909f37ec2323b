"""Money that sits at a channel is in the books, end to end.

A late payment is owed from the moment it is given back until the channel confirms it;
a compensation holds the payment in refunds in flight until the channel pays it back;
a channel's day swept into our bank account leaves its clearing flat, its fees as we
booked them, and the bank able to pay the merchants out. The order identity
(`db.reconcile`) holds at each step, not only at the end.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlmodel import Session
from temporalio.client import Client

from db.ledger import account_balance
from db.reconcile import Scope, ledger_problems, negative_balances, order_breakdown
from db.tables import Order, ReconciliationException, Refund
from domain.ledger import AccountKind, account_id
from domain.reconciliation import BillWait, DiscrepancyType, ReconciliationInput, exception_id
from tests.conftest import System
from tests.support import (
    create_merchant,
    create_order,
    get_order,
    merchant_payout,
    order_refunds,
    pay,
    post_refund,
    settings_from_env,
    wait_for,
    wait_status,
)
from workflows.reconciliation import ReconciliationWorkflow
from workflows.sweep_schedule import start_channel_sweep

PAYABLE = 7498  # the default order body: 2 x 1999 + 3500
SWEPT_CURRENCY = "CHF"  # no other test takes francs: the card's CHF day is this test's alone


def _books(system: System, order_id: str) -> tuple[dict[str, int], list[str]]:
    """The order's money by where it is, and what the reconciliation finds wrong with it."""
    with Session(system.engine) as session:
        scope = Scope(order_ids=[order_id], accounts=[], merchant_ids=[])
        return order_breakdown(session, order_id), ledger_problems(session, scope)


async def _one_refund(system: System, order_id: str, status: str) -> Refund:
    async def probe() -> list[Refund]:
        return order_refunds(system.engine, order_id)

    [refund] = await wait_for(
        probe, lambda r: len(r) == 1 and r[0].status == status, f"one {status} refund"
    )
    return refund


async def test_a_late_payment_is_owed_until_its_refund_lands(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    order = await create_order(api, await create_merchant(api), payment_timeout_seconds=1)
    await wait_status(api, order["id"], "closed")
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "pending"})
    await pay(sandbox, order["id"], force=True)  # a stale QR code, paid after the close

    refund = await _one_refund(system, order["id"], "pending")
    parts, problems = _books(system, order["id"])
    assert problems == []
    assert (parts["late_payments"], parts["clearing"]) == (PAYABLE, PAYABLE)

    completed = await sandbox.post(f"/control/refunds/{refund.id}/complete")
    assert completed.status_code == 200, completed.text
    await _one_refund(system, order["id"], "succeeded")
    parts, problems = _books(system, order["id"])
    assert problems == []
    assert (parts["late_payments"], parts["clearing"]) == (0, 0)
    assert (await get_order(api, order["id"]))["status"] == "closed"


async def test_compensation_holds_the_payment_in_flight_until_the_channel_pays_it_back(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System
) -> None:
    merchant_id = await create_merchant(api)
    order = await create_order(api, merchant_id)
    await sandbox.post(f"/control/refund-behaviour/{order['id']}", json={"mode": "pending"})
    await api.post(f"/v1/merchants/{merchant_id}/suspend")  # settling it is refused: compensate
    await pay(sandbox, order["id"])

    refund = await _one_refund(system, order["id"], "pending")
    assert refund.reason == "compensation"
    parts, problems = _books(system, order["id"])
    assert problems == []
    assert (parts["refunds_in_flight"], parts["clearing"]) == (PAYABLE, PAYABLE)

    completed = await sandbox.post(f"/control/refunds/{refund.id}/complete")
    assert completed.status_code == 200, completed.text
    await wait_status(api, order["id"], "refunded")
    parts, problems = _books(system, order["id"])
    assert problems == []
    assert (parts["refunds_in_flight"], parts["clearing"]) == (0, 0)


def _platform(system: System, kind: AccountKind, owner: str = "platform") -> int:
    with Session(system.engine) as session:
        return account_balance(session, account_id(kind, owner, SWEPT_CURRENCY))


async def test_a_swept_day_lands_in_the_bank_and_pays_the_merchant_out(
    api: httpx.AsyncClient, sandbox: httpx.AsyncClient, system: System, temporal: Client
) -> None:
    today = datetime.now(UTC).date()
    merchant_id = await create_merchant(api)
    kept, refunded = [
        await create_order(api, merchant_id, channel="card", currency=SWEPT_CURRENCY)
        for _ in range(2)
    ]
    for order in (kept, refunded):
        await pay(sandbox, order["id"])
        await wait_status(api, order["id"], "completed")
    response = await post_refund(api, refunded["id"], amount=PAYABLE)
    assert response.status_code == 201, response.text
    await _one_refund(system, refunded["id"], "succeeded")
    bank_before = _platform(system, AccountKind.BANK)

    settled = await sandbox.post(f"/control/sweeps/card/{today.isoformat()}")
    assert settled.status_code == 200, settled.text
    [transfer] = [t for t in settled.json() if t["currency"] == SWEPT_CURRENCY]
    # The day's card report lists the payout; we have not posted it yet.
    unposted = await _sweep_exception(temporal, system, sandbox, today)
    assert (unposted.type, unposted.status, unposted.ours_amount, unposted.theirs_amount) == (
        "missing_here",
        "open",
        None,
        transfer["net"],
    )
    assert transfer["transfer_id"] in unposted.detail
    handle = await start_channel_sweep(temporal, settings_from_env(system.env), "card", today)
    result = await handle.result()

    with Session(system.engine) as session:
        fee = session.get_one(Order, kept["id"]).channel_fee_amount
        commission = session.get_one(Order, kept["id"]).commission_amount
    assert fee is not None and commission is not None
    [swept] = [t for t in result.transfers if t.currency == SWEPT_CURRENCY]
    # Both paid, one paid back with its fee: the channel keeps the other's fee.
    assert (swept.gross, swept.refunds, swept.fees) == (2 * PAYABLE, PAYABLE, fee)
    assert swept.net == transfer["net"] == PAYABLE - fee
    # Other tests share the card channel's day in other currencies; this one is ours alone.
    assert swept.booked_fees == fee and SWEPT_CURRENCY not in result.fee_differences
    assert _platform(system, AccountKind.BANK) - bank_before == swept.net
    assert _platform(system, AccountKind.CHANNEL_CLEARING, "card") == 0  # the day is flat
    assert _platform(system, AccountKind.CHANNEL_FEE, "card") == 0

    # Posted now: the day reconciled again no longer differs in francs.
    matched = await _sweep_exception(temporal, system, sandbox, today)
    assert (matched.id, matched.status) == (unposted.id, "auto_resolved")
    assert matched.resolution_reason and "no longer differs" in matched.resolution_reason

    again = await start_channel_sweep(temporal, settings_from_env(system.env), "card", today)
    repeated = [t for t in (await again.result()).transfers if t.currency == SWEPT_CURRENCY]
    assert [t.newly_posted for t in repeated] == [False]

    settlement = await api.post(
        f"/v1/merchants/{merchant_id}/settlements", json={"day": today.isoformat()}
    )
    assert settlement.status_code == 202, settlement.text
    await merchant_payout(system.engine, merchant_id)
    assert _platform(system, AccountKind.BANK) - bank_before == commission  # ours, after all
    with Session(system.engine) as session:
        accounts = [
            account_id(kind, owner, SWEPT_CURRENCY)
            for kind, owner in (
                (AccountKind.BANK, "platform"),
                (AccountKind.CHANNEL_CLEARING, "card"),
                (AccountKind.REFUNDS_IN_FLIGHT, "card"),
                (AccountKind.LATE_PAYMENTS, "card"),
                (AccountKind.MERCHANT_AVAILABLE, merchant_id),
                (AccountKind.MERCHANT_IN_TRANSIT, merchant_id),
            )
        ]
        assert negative_balances(session, accounts) == []


async def _sweep_exception(
    temporal: Client, system: System, sandbox: httpx.AsyncClient, day: date
) -> ReconciliationException:
    """Reconcile the card's day on its real report (published early) and return the
    exception about its sweeps in this test's currency."""
    published = await sandbox.post(f"/control/bills/card/{day.isoformat()}/publish")
    assert published.status_code in (200, 204), published.text
    await temporal.execute_workflow(
        ReconciliationWorkflow.run,
        ReconciliationInput(channel="card", day=day, wait=BillWait(first_retry_seconds=1)),
        id=f"reconciliation-card-{day}-{secrets.token_hex(4)}",
        task_queue=system.task_queue,
        execution_timeout=timedelta(minutes=2),
    )
    with Session(system.engine) as session:
        row = session.get(
            ReconciliationException,
            exception_id(
                "card", day, DiscrepancyType.MISSING_HERE, "sweep", f"sweep:{SWEPT_CURRENCY}"
            ),
        )
        assert row is not None, "the day's report lists the payout"
        session.expunge(row)
        return row
