"""The chaos run's pure parts on small made-up inputs: its plan, the sandbox's faults at a
rate, and the checker's verdicts (the run itself is `make chaos`, not part of the suite)."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from chaos.checker import check, expected_statuses, still_settling
from chaos.facts import (
    ChannelPayment,
    ChannelRefund,
    Facts,
    OurOrder,
    OurPayment,
    OurRefund,
    WorkflowFact,
)
from chaos.plan import OrderPlan, Scenario, kill_schedule, order_plans
from chaos.workload import OrderRecord, RefundAttempt
from domain.keys import late_payment_refund_id
from sandbox.fault_rates import (
    ChannelFaultRates,
    FaultInjector,
    FaultRates,
    install_fault_injection,
)
from sandbox.notifier import DeliveryMode

ORDER = "ord_0001"


def paid_order(scenario: Scenario = Scenario.PAY) -> OrderRecord:
    record = OrderRecord(plan=OrderPlan(0, scenario, "alipay", "normal", 0), key="k")
    record.order_id, record.payable, record.paid = ORDER, 1000, True
    record.ids_answered = {ORDER}
    return record


def facts_of_paid_order(status: str = "completed") -> Facts:
    return Facts(
        orders={ORDER: OurOrder(ORDER, status, 1000, 0)},
        payments=[OurPayment(ORDER, 1, "paid", "txn_1", 1000)],
        channel_payments=[ChannelPayment("alipay", ORDER, "paid", 1000, "txn_1")],
        workflows=[WorkflowFact(f"order-{ORDER}", "OrderWorkflow", "COMPLETED")],
    )


def found(problems: dict[str, list[str]]) -> dict[str, int]:
    return {kind: len(lines) for kind, lines in problems.items() if lines}


def test_a_paid_order_held_by_both_sides_passes() -> None:
    assert found(check([paid_order()], facts_of_paid_order())) == {}


def test_an_order_missing_from_our_database_is_lost() -> None:
    facts = facts_of_paid_order()
    facts.orders.clear()
    assert found(check([paid_order()], facts))["lost"] == 1


def test_two_ids_for_one_key_are_a_doubled_order() -> None:
    record = paid_order()
    record.ids_answered.add("ord_0002")
    assert found(check([record], facts_of_paid_order())) == {"doubled": 1}


def test_a_capture_we_do_not_hold_is_unmatched_unless_given_back() -> None:
    facts = facts_of_paid_order("closed")
    facts.payments = [OurPayment(ORDER, 1, "closed", None, 1000)]
    record = paid_order(Scenario.LATE_PAY)
    assert found(check([record], facts)) == {"unmatched": 1}
    late = late_payment_refund_id(ORDER, "txn_1")
    facts.channel_refunds = [ChannelRefund("alipay", late, ORDER, 1000, "succeeded")]
    assert found(check([record], facts)) == {"unmatched": 1}  # and not in our refunds
    facts.refunds = {late: OurRefund(late, ORDER, 1000, "succeeded", "late_payment")}
    assert found(check([record], facts)) == {}


def test_the_drain_waits_for_a_late_payment_to_be_given_back_and_sagas_to_end() -> None:
    # Paid at the channel after the order closed, its notification still on its way.
    facts = facts_of_paid_order("closed")
    facts.payments = [OurPayment(ORDER, 1, "closed", None, 1000)]
    assert len(still_settling(facts)) == 1
    late = late_payment_refund_id(ORDER, "txn_1")
    facts.channel_refunds = [ChannelRefund("alipay", late, ORDER, 1000, "succeeded")]
    facts.refunds = {late: OurRefund(late, ORDER, 1000, "succeeded", "late_payment")}
    facts.workflows.append(WorkflowFact(f"late-{ORDER}", "LatePaymentRefundWorkflow", "RUNNING"))
    assert len(still_settling(facts)) == 1
    facts.workflows[-1] = WorkflowFact(f"late-{ORDER}", "LatePaymentRefundWorkflow", "COMPLETED")
    assert still_settling(facts) == []


def test_a_paid_order_closed_is_wrong_and_an_open_saga_is_stuck() -> None:
    facts = facts_of_paid_order("closed")
    facts.workflows.append(WorkflowFact("refund-rf_1", "RefundWorkflow", "RUNNING"))
    facts.workflows.append(WorkflowFact("order-ord_9", "OrderWorkflow", "FAILED"))
    assert found(check([paid_order()], facts)) == {"wrong": 1, "stuck": 1, "failed": 1}


def test_a_late_payment_must_leave_the_order_closed_only_if_the_client_saw_it_close() -> None:
    """The client pays a late_pay order once it saw it closed; if its wait ran out first,
    the order may have been open still, and taking the payment is then right."""
    unseen = paid_order(Scenario.LATE_PAY)
    assert found(check([unseen], facts_of_paid_order("completed"))) == {}
    seen = paid_order(Scenario.LATE_PAY)
    seen.saw_closed = True
    assert found(check([seen], facts_of_paid_order("completed"))) == {"wrong": 1}
    assert expected_statuses(seen) == {"closed"}


def test_racing_refunds_both_accepted_beyond_the_payment_are_doubled() -> None:
    record = paid_order(Scenario.REFUND_RACE)
    record.refunds = [RefundAttempt("a", 600, [201], set()), RefundAttempt("b", 600, [201], set())]
    assert found(check([record], facts_of_paid_order())) == {"doubled": 1}


def test_the_plan_is_the_seeds_and_kills_every_process() -> None:
    assert order_plans(50, 60, 7) == order_plans(50, 60, 7)
    kills = kill_schedule(120, 7, (6, 14))
    assert {k.target for k in kills} == {"worker", "api", "sandbox", "temporal", "postgres"}
    assert all(0 < k.at_s < 120 for k in kills)
    assert not any(k.pause for k in kills)


def test_with_two_workers_kills_and_pauses_fall_on_either_and_one_plans_as_it_did() -> None:
    kills = kill_schedule(600, 7, (6, 14), workers=2)
    assert {k.target for k in kills if k.pause} == {"worker", "worker-2"}
    assert {k.target for k in kills if not k.pause} >= {"worker", "worker-2", "api"}
    assert all(k.down_s >= 2.5 for k in kills if k.pause)  # past the task timeout
    first = [(k.at_s, k.target, k.down_s) for k in kill_schedule(120, 7, (6, 14))[:3]]
    assert first == [(6.17, "postgres", 1.8), (13.33, "sandbox", 2.9), (26.7, "api", 0.49)]


def test_an_injected_fault_answers_before_the_route_and_no_fault_passes_through() -> None:
    """The sandbox's middleware (a plain ASGI one) over a route of the card's API."""
    app = FastAPI()

    @app.post("/card/v1/payment_intents")
    async def create() -> dict[str, str]:
        return {"id": "pi_1"}

    injector = FaultInjector()
    install_fault_injection(app, injector)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            return await client.post("/card/v1/payment_intents", json={"amount": 1})

    assert asyncio.run(call()).json() == {"id": "pi_1"}  # no plan
    injector.set_rates(FaultRates(channels={"card": ChannelFaultRates(error_rate=1)}))
    refused = asyncio.run(call())
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "unavailable"
    slow = ChannelFaultRates(slow_rate=1, slow_ms=1)
    injector.set_rates(FaultRates(channels={"card": slow}))
    assert asyncio.run(call()).json() == {"id": "pi_1"}
    assert injector.injected == {"card.error": 1, "card.slow": 1}


def test_the_sandbox_injects_faults_at_its_rates_and_counts_them() -> None:
    injector = FaultInjector()
    assert injector.api_fault("/alipay/gateway.do") is None  # no plan: no faults
    injector.set_rates(FaultRates(channels={"card": ChannelFaultRates(error_rate=1)}, seed=3))
    assert injector.api_fault("/card/v1/payment_intents") is not None
    assert injector.api_fault("/alipay/gateway.do") is None
    assert injector.api_fault("/control/fault-rates") is None
    assert injector.notification(DeliveryMode.DROP, 0) == (DeliveryMode.DROP, 0)
    assert injector.injected == {"card.error": 1}
