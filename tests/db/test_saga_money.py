"""A saga's own refunds in the books, written by `db.saga_money` on a real database.

Late payments are owed while the channel holds them and leave when it pays them back;
a compensation moves the order's money into refunds in flight and out of clearing only
on confirmation, whatever shape the books were in before (an order whose settlement an
earlier version reversed at once). The order identity holds at every step.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from db.ledger import reverse_entry
from db.reconcile import negative_balances
from db.saga_money import book_refund_asked, book_refund_confirmed
from db.tables import Refund
from domain.keys import compensation_refund_id, late_payment_refund_id, settlement_entry_id
from domain.ledger import AccountKind
from domain.refunds import RefundStatus
from tests.db.conftest import Shop, new_id

PAYABLE = 10000  # TWO_LINES


def _ask(shop: Shop, order_id: str, refund_id: str, reason: str, amount: int) -> None:
    """What `ChannelCalls.refund_once` does before asking the channel."""
    now = datetime.now(UTC)
    with Session(shop.engine) as session, session.begin():
        refund = Refund(
            id=refund_id,
            order_id=order_id,
            channel=shop.channel,
            amount=amount,
            currency=shop.currency,
            reason=reason,
            status=RefundStatus.PENDING,
            created_at=now,
            updated_at=now,
        )
        session.add(refund)
        session.flush()
        book_refund_asked(session, refund)
        book_refund_asked(session, refund)  # a retried ask books nothing more


def _answer(shop: Shop, refund_id: str, status: RefundStatus) -> None:
    """What it does with the channel's final answer."""
    with Session(shop.engine) as session, session.begin():
        refund = session.get_one(Refund, refund_id)
        book_refund_asked(session, refund)
        if status == RefundStatus.SUCCEEDED:
            book_refund_confirmed(session, refund)
            book_refund_confirmed(session, refund)  # a repeated answer posts once
        refund.status = status


def test_a_late_payment_is_owed_until_the_channel_pays_it_back(shop: Shop) -> None:
    order_id = shop.paid_order()
    refund_id = late_payment_refund_id(order_id, new_id("txn"))
    _ask(shop, order_id, refund_id, "late_payment", 1999)
    balances = shop.balances()
    assert balances[AccountKind.LATE_PAYMENTS] == 1999
    assert balances[AccountKind.CHANNEL_CLEARING] == PAYABLE + 1999
    assert shop.ledger_problems() == []
    _answer(shop, refund_id, RefundStatus.SUCCEEDED)
    balances = shop.balances()
    assert balances[AccountKind.LATE_PAYMENTS] == 0
    assert balances[AccountKind.CHANNEL_CLEARING] == PAYABLE
    assert shop.ledger_problems() == []


def test_a_refused_late_payment_refund_leaves_the_debt(shop: Shop) -> None:
    order_id = shop.paid_order()
    refund_id = late_payment_refund_id(order_id, new_id("txn"))
    _ask(shop, order_id, refund_id, "late_payment", 500)
    _answer(shop, refund_id, RefundStatus.FAILED)
    assert shop.balances()[AccountKind.LATE_PAYMENTS] == 500
    assert shop.ledger_problems() == []


def test_compensation_holds_the_money_in_flight_until_the_channel_confirms(shop: Shop) -> None:
    order_id = shop.paid_order()
    first = compensation_refund_id(order_id)
    _ask(shop, order_id, first, "compensation", PAYABLE)
    balances = shop.balances()
    assert balances[AccountKind.REFUNDS_IN_FLIGHT] == PAYABLE
    assert balances[AccountKind.MERCHANT_PENDING] == 0
    assert balances[AccountKind.CHANNEL_FEE] == 0
    assert balances[AccountKind.CHANNEL_CLEARING] == PAYABLE  # the channel still has it
    assert shop.ledger_problems() == []
    _answer(shop, first, RefundStatus.FAILED)  # refused: the money stays in flight
    assert shop.balances()[AccountKind.REFUNDS_IN_FLIGHT] == PAYABLE
    assert shop.ledger_problems() == []
    second = compensation_refund_id(order_id, 2)  # ops asked again
    _ask(shop, order_id, second, "compensation", PAYABLE)
    assert shop.balances()[AccountKind.REFUNDS_IN_FLIGHT] == PAYABLE  # not moved twice
    _answer(shop, second, RefundStatus.SUCCEEDED)
    balances = shop.balances()
    assert balances[AccountKind.REFUNDS_IN_FLIGHT] == 0
    assert balances[AccountKind.CHANNEL_CLEARING] == 0
    assert shop.ledger_problems() == []
    with Session(shop.engine) as session:
        held = (
            AccountKind.CHANNEL_CLEARING,
            AccountKind.REFUNDS_IN_FLIGHT,
            AccountKind.LATE_PAYMENTS,
        )
        assert negative_balances(session, [shop.account(k) for k in held]) == []


def test_an_order_reversed_by_the_earlier_version_is_completed_once(shop: Shop) -> None:
    order_id = shop.paid_order()
    with Session(shop.engine) as session, session.begin():
        reverse_entry(session, settlement_entry_id(order_id))  # the old compensation step
    refund_id = compensation_refund_id(order_id)
    now = datetime.now(UTC)
    with Session(shop.engine) as session, session.begin():  # asked before the deploy
        session.add(
            Refund(
                id=refund_id,
                order_id=order_id,
                channel=shop.channel,
                amount=PAYABLE,
                currency=shop.currency,
                reason="compensation",
                status=RefundStatus.PENDING,
                created_at=now,
                updated_at=now,
            )
        )
    _answer(shop, refund_id, RefundStatus.SUCCEEDED)  # confirmed after it
    balances = shop.balances()
    assert balances[AccountKind.CHANNEL_CLEARING] == 0
    assert balances[AccountKind.REFUNDS_IN_FLIGHT] == 0
    assert shop.ledger_problems() == []


def test_a_payment_no_split_holds_is_given_back_through_clearing(shop: Shop) -> None:
    order_id = shop.paid_order()
    with Session(shop.engine) as session, session.begin():  # reversed, as an earlier version
        reverse_entry(session, settlement_entry_id(order_id))  # did before asking the channel
    refund_id = compensation_refund_id(order_id)
    _ask(shop, order_id, refund_id, "compensation", PAYABLE)
    assert shop.balances()[AccountKind.REFUNDS_IN_FLIGHT] == PAYABLE
    assert shop.ledger_problems() == []
    _answer(shop, refund_id, RefundStatus.SUCCEEDED)
    assert shop.balances()[AccountKind.CHANNEL_CLEARING] == 0
    assert shop.ledger_problems() == []
