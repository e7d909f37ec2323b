"""An order's saga steps read from its workflow history, said for a person: each local
activity's marker becomes its step, signals and endings theirs, and Temporal's own
bookkeeping (workflow tasks, search attributes) is left out."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import WorkflowHistory

from api.pages.timeline import saga_steps

HISTORIES = Path(__file__).parents[1] / "workflows" / "histories"


def _titles(name: str) -> list[str]:
    history = WorkflowHistory.from_json("order", (HISTORIES / name).read_text())
    return [step.title for step in saga_steps(history)]


def test_a_closed_orders_history_reads_as_its_steps() -> None:
    assert _titles("order_closed.json") == [
        "Saga started",
        "Request: await checkout",
        "Order recorded",
        "Payment created at the channel",
        "Timer fired",
        "Asked the channel about the payment",
        "Payment closed at the channel",
        "Status changed",
        "Saga finished",
    ]


def test_a_completed_orders_history_has_its_money_steps() -> None:
    titles = _titles("order_completed.json")
    for step in ("Payment recorded", "Split posted to the ledger", "Buyer and merchant notified"):
        assert step in titles
    assert titles[-1] == "Saga finished"


def test_an_order_of_saga_version_3_reads_as_the_steps_it_merged() -> None:
    assert _titles("order_alipay_completed.json") == [
        "Saga started",
        "Request: await checkout",
        "Order recorded · Payment created at the channel",
        "Channel notification received",
        "Payment recorded · Split posted to the ledger · Buyer and merchant notified"
        " · Merchant's share released",
        "Saga finished",
    ]
    held = _titles("order_receipt_confirmed.json")
    fulfilled = "Payment recorded · Split posted to the ledger · Buyer and merchant notified"
    assert fulfilled in held and "Merchant's share released" in held  # its own step, later
