"""The verdict: what the client did and was told, against what every side holds. Pure.

lost       an order the client got an id for is not in our database
doubled    one Idempotency-Key gave two orders; a refund key two refunds; an order
           paid twice at the channel; more refunded than paid
wrong      an order's final state does not follow from what the client did
unmatched  the channel's records and ours disagree: a capture we do not hold as
           paid (nor gave back as a late payment), a refund one side lacks
ledger     a broken invariant of the books (db.reconcile.ledger_problems)
stuck      after the drain, an order not final or a saga still running
failed     a workflow that ended in failure (failed, terminated, timed out)
gave_up    a request the client never got an answer to (its outcome is unknown)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from chaos.facts import ChannelPayment, Facts, OurOrder
from chaos.plan import Scenario
from chaos.workload import OrderRecord
from domain.keys import late_payment_refund_id, split_payment_reference
from domain.order_status import FINAL_STATUSES

KINDS = ("lost", "doubled", "wrong", "unmatched", "ledger", "stuck", "failed", "gave_up")
# Sagas that must have ended once the system is quiet; others (settlement runs, merchant
# webhooks with their own retry schedules) may rightly still wait.
MUST_END = frozenset({"OrderWorkflow", "RefundWorkflow", "LatePaymentRefundWorkflow"})
FAILED_ENDINGS = frozenset({"FAILED", "TERMINATED", "TIMED_OUT", "CANCELED"})

Problems = dict[str, list[str]]


def check(records: Iterable[OrderRecord], facts: Facts) -> Problems:
    problems: Problems = {kind: [] for kind in KINDS}
    labels: dict[str, str] = {}
    for record in records:
        _check_order(record, facts, problems)
        if record.order_id:
            labels[record.order_id] = f" (#{record.plan.number} {record.plan.scenario})"
    _check_channel(facts, problems, labels)
    problems["ledger"] += facts.ledger_problems
    _check_workflows(facts, problems)
    return problems


def still_settling(facts: Facts) -> list[str]:
    """What a quiet system has finished and this one has not yet: a capture at the channel
    neither ours nor given back (a late payment whose delayed notification is on its way),
    a refund one side lacks, a saga that must end still running. The drain waits for none
    (facts read before then would report a race as a loss)."""
    problems: Problems = {kind: [] for kind in KINDS}
    _check_channel(facts, problems, {})
    _check_workflows(facts, problems)
    return problems["unmatched"] + problems["stuck"]


def _check_order(record: OrderRecord, facts: Facts, problems: Problems) -> None:
    label = f"#{record.plan.number} {record.plan.scenario} {record.plan.channel} {record.order_id}"
    if record.gave_up:
        problems["gave_up"].append(f"{label}: {record.gave_up}")
    if len(record.ids_answered) > 1:
        problems["doubled"].append(f"{label}: key {record.key} gave {sorted(record.ids_answered)}")
    if record.order_id is None:
        return
    order = facts.orders.get(record.order_id)
    if order is None:
        problems["lost"].append(f"{label}: not in our database")
        return
    if order.status not in FINAL_STATUSES:
        problems["stuck"].append(f"{label}: still {order.status}")
        return
    expected = expected_statuses(record)
    if order.status not in expected:
        problems["wrong"].append(
            f"{label}: {order.status}, expected {sorted(expected)}; client: {record.steps}"
        )
    _check_refund_race(record, order, facts, label, problems)


def expected_statuses(record: OrderRecord) -> frozenset[str]:
    """The final statuses that follow from what the client did and was told."""
    scenario = record.plan.scenario
    if scenario in (Scenario.PAY, Scenario.REFUND_RACE) and record.paid:
        return frozenset({"completed", "refunded"})
    if scenario is Scenario.DECLINE and record.declined:
        return frozenset({"closed"})
    if scenario is Scenario.TIMEOUT:
        return frozenset({"closed"})
    if scenario is Scenario.LATE_PAY and record.saw_closed:
        # Paid only after the client saw it closed: the payment is late and given back.
        # A client that never saw the close (its wait ran out) paid an order that may
        # still have been open, which may then rightly complete.
        return frozenset({"closed"})
    if scenario is Scenario.CANCEL and record.cancel_status == 200:
        return frozenset({"cancelled"})
    if scenario is Scenario.CANCEL_RACING_PAY:
        if record.cancel_status == 200:
            return frozenset({"cancelled"})
        if record.paid:
            return frozenset({"completed"})
    return FINAL_STATUSES  # the client learnt nothing that decides it


def _check_refund_race(
    record: OrderRecord, order: OurOrder, facts: Facts, label: str, problems: Problems
) -> None:
    accepted = [a for a in record.refunds if 201 in a.answers]
    for attempt in record.refunds:
        if len(attempt.refund_ids) > 1:
            problems["doubled"].append(
                f"{label}: refund key {attempt.key} gave {attempt.refund_ids}"
            )
        for refund_id in attempt.refund_ids:
            if refund_id not in facts.refunds:
                problems["lost"].append(f"{label}: refund {refund_id} answered 201, not stored")
    if sum(a.amount for a in accepted) > order.payable:
        problems["doubled"].append(
            f"{label}: refunds of {[a.amount for a in accepted]} accepted on {order.payable}"
        )
    if order.refunded > order.payable:
        problems["doubled"].append(f"{label}: refunded {order.refunded} of {order.payable}")


def _check_channel(facts: Facts, problems: Problems, labels: dict[str, str]) -> None:
    """Every capture at the channel is ours (paid) or given back (a late payment's refund),
    and no order keeps two; nothing we hold as final is left open at the channel."""
    ours = {(p.order_id, p.attempt): p for p in facts.payments}
    kept: dict[str, int] = defaultdict(int)
    for payment in facts.channel_payments:
        order_id, attempt = split_payment_reference(payment.reference)
        mine = ours.get((order_id, attempt))
        order = facts.orders.get(order_id)
        if payment.status == "pending" and order and order.status in FINAL_STATUSES:
            problems["unmatched"].append(
                f"{payment.reference}: open at {payment.channel}, ours {order.status}"
            )
        if payment.status != "paid":
            if mine and mine.status == "paid":
                problems["unmatched"].append(
                    f"{payment.reference}: ours paid, channel {payment.status}"
                )
            continue
        if mine and mine.status == "paid":
            kept[order_id] += 1
            if mine.txn_id != payment.txn_id:
                problems["unmatched"].append(
                    f"{payment.reference}: ours paid by {mine.txn_id}, channel {payment.txn_id}"
                )
        elif not _given_back(payment, order_id, facts):
            problems["unmatched"].append(
                f"{payment.reference}: captured {payment.amount} at {payment.channel} "
                f"({payment.txn_id}), ours {mine.status if mine else 'none'}, not given back"
                f"{labels.get(order_id, '')}"
            )
    problems["doubled"] += [f"{o}: {n} captures kept" for o, n in kept.items() if n > 1]
    _check_refunds(facts, problems)


def _given_back(payment: ChannelPayment, order_id: str, facts: Facts) -> bool:
    refund_id = late_payment_refund_id(order_id, payment.txn_id or "")
    return any(
        r.id == refund_id and r.status == "succeeded" and r.amount == payment.amount
        for r in facts.channel_refunds
    )


def _check_refunds(facts: Facts, problems: Problems) -> None:
    at_channel = {r.id: r for r in facts.channel_refunds}
    for refund in facts.channel_refunds:
        mine = facts.refunds.get(refund.id)
        if mine is None:
            problems["unmatched"].append(f"refund {refund.id}: at the channel, not ours")
        elif mine.status != refund.status and refund.status != "pending":
            problems["unmatched"].append(
                f"refund {refund.id}: ours {mine.status}, channel {refund.status}"
            )
    for mine in facts.refunds.values():
        if mine.status == "succeeded" and mine.id not in at_channel:
            problems["unmatched"].append(f"refund {mine.id}: ours succeeded, channel has none")


def _check_workflows(facts: Facts, problems: Problems) -> None:
    for workflow in facts.workflows:
        if workflow.status in FAILED_ENDINGS:
            problems["failed"].append(f"{workflow.type} {workflow.id}: {workflow.status}")
        elif workflow.status == "RUNNING" and workflow.type in MUST_END:
            problems["stuck"].append(f"{workflow.type} {workflow.id}: still running")


def count_statuses(orders: Iterable[OurOrder]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for order in orders:
        counts[order.status] += 1
    return dict(sorted(counts.items()))
