"""What each side holds at the end of a run, read into plain records for the checker:
our database (orders, payment attempts, refunds, the ledger's verdict from
`db.reconcile.ledger_problems`), the channel's (the sandbox's journal, to which it
appends every change) and Temporal's (every workflow and how it stands).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select
from temporalio.client import Client

from db.engine import make_engine
from db.reconcile import ledger_problems
from db.tables import Order, Payment, Refund
from domain.order_status import FINAL_STATUSES
from sandbox.journal import read_state


@dataclass(frozen=True)
class OurOrder:
    id: str
    status: str
    payable: int
    refunded: int


@dataclass(frozen=True)
class OurPayment:
    order_id: str
    attempt: int
    status: str
    txn_id: str | None
    amount: int


@dataclass(frozen=True)
class OurRefund:
    id: str
    order_id: str
    amount: int
    status: str
    reason: str


@dataclass(frozen=True)
class ChannelPayment:
    channel: str
    reference: str  # out_trade_no
    status: str
    amount: int
    txn_id: str | None


@dataclass(frozen=True)
class ChannelRefund:
    channel: str
    id: str
    reference: str
    amount: int
    status: str


@dataclass(frozen=True)
class WorkflowFact:
    id: str
    type: str
    status: str  # RUNNING, COMPLETED, FAILED, TERMINATED, TIMED_OUT, CANCELED, ...


@dataclass
class Facts:
    orders: dict[str, OurOrder] = field(default_factory=dict)
    payments: list[OurPayment] = field(default_factory=list)
    refunds: dict[str, OurRefund] = field(default_factory=dict)
    channel_payments: list[ChannelPayment] = field(default_factory=list)
    channel_refunds: list[ChannelRefund] = field(default_factory=list)
    workflows: list[WorkflowFact] = field(default_factory=list)
    ledger_problems: list[str] = field(default_factory=list)


def read_database(database_url: str, facts: Facts) -> None:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            for order in session.exec(select(Order)):
                facts.orders[order.id] = OurOrder(
                    order.id, order.status, order.payable_amount, order.refunded_amount
                )
            facts.payments = [
                OurPayment(p.order_id, p.attempt, p.status, p.channel_txn_id, p.amount)
                for p in session.exec(select(Payment))
            ]
            for refund in session.exec(select(Refund)):
                facts.refunds[refund.id] = OurRefund(
                    refund.id, refund.order_id, refund.amount, refund.status, refund.reason
                )
            facts.ledger_problems = ledger_problems(session)
    finally:
        engine.dispose()


def read_sandbox_store(path: Path, facts: Facts) -> None:
    snapshot = read_state(path)
    facts.channel_payments = [
        ChannelPayment(p["channel"], p["out_trade_no"], p["status"], p["amount"], p["txn_id"])
        for p in snapshot.get("payments", [])
    ]
    facts.channel_refunds = [
        ChannelRefund(r["channel"], r["refund_id"], r["out_trade_no"], r["amount"], r["status"])
        for r in snapshot.get("refunds", [])
    ]


async def read_workflows(address: str, facts: Facts) -> None:
    client = await Client.connect(address)
    facts.workflows = [
        WorkflowFact(execution.id, execution.workflow_type, _status_name(execution.status))
        async for execution in client.list_workflows()
    ]


def _status_name(status: object) -> str:
    name = getattr(status, "name", None)
    return str(name) if name else str(status)


def unfinished_orders(database_url: str) -> int:
    """How many orders are not yet in a final status (the drain waits for none)."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            query = select(Order.id).where(col(Order.status).not_in(list(FINAL_STATUSES)))
            return len(session.exec(query).all())
    finally:
        engine.dispose()
