"""A shop whose money has been through every step, written by the db-layer functions.

A buyer's order paid, refunded in part by a line, completed and reviewed; a second order
paid and completed; a statement covering both, its payout paid by the bank; and a third
order awaiting payment with a coupon hold. Each kind of row the constraints protect
exists, and the whole still reconciles. The functions take the database as it is, so
this also fills a database at an earlier revision (the baseline) before an upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, insert, inspect, literal, select, text
from sqlmodel import Session

from db.order_money import complete_refund, release_funds, reserve_refund
from db.party_notifications import notify_party
from db.settlement import (
    covered_entry_ids,
    mark_payout_paid,
    prepare_statement,
    statement_payout,
)
from db.tables import (
    CouponRedemption,
    IdempotencyKey,
    Order,
    OrderLine,
    Payment,
    Review,
    Statement,
    StatementEntry,
)
from db.webhook_events import record_order_event
from domain.keys import settlement_entry_id
from domain.ledger import AccountKind
from domain.order_status import OrderStatus
from domain.refunds import LineRefund, RefundAsk, Requester
from domain.webhook_events import EventType
from tests.db.conftest import Shop, make_coupon, new_buyer, new_id, open_shop


@dataclass(frozen=True)
class Books:
    """The ids of what `fill_books` wrote."""

    shop: Shop
    buyer_id: str
    coupon_code: str
    order_id: str  # paid by the buyer, refunded in part (line 1), completed, reviewed
    other_order_id: str  # paid and completed
    open_order_id: str  # awaiting payment, holding the coupon
    refund_id: str
    entry_id: str  # the settlement entry of `order_id`
    statement_id: str
    payout_id: str

    @property
    def engine(self) -> Engine:
        return self.shop.engine

    @property
    def txn_id(self) -> str:
        """The channel transaction that paid `order_id`."""
        with Session(self.engine) as session:
            return session.get_one(Payment, (self.order_id, 1)).channel_txn_id or ""

    def account(self, kind: AccountKind) -> str:
        return self.shop.account(kind)


def fill_books(engine: Engine) -> Books:
    shop = open_shop(engine)
    buyer_id = new_buyer(engine)
    coupon_code = make_coupon(shop, quantity=10)
    order_id, other_order_id = shop.paid_order(), shop.paid_order()
    refund_id = new_id("rf")
    ask = RefundAsk(
        refund_id=refund_id,
        order_id=order_id,
        requested_by=Requester.BUYER,
        lines=(LineRefund(line_no=1, quantity=1),),
    )
    with Session(engine) as session, session.begin():
        session.get_one(Order, order_id).buyer_id = buyer_id
        reserve_refund(session, ask, timedelta(days=14))
    with Session(engine) as session, session.begin():
        complete_refund(session, refund_id)
        order = session.get_one(Order, order_id)
        notify_party(session, order_id, "buyer", buyer_id, "refund_issued", refund_id)
        record_order_event(session, order, EventType.ORDER_PAID)
    with Session(engine) as session, session.begin():
        release_funds(session, order_id)
        release_funds(session, other_order_id)
        session.add(_review(shop, order_id, buyer_id))
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)  # its cutoff: now
    with Session(engine) as session, session.begin():
        statement = _prepare_statement(session, shop, tomorrow)
        payout = statement_payout(session, statement)
        assert payout is not None
        statement_id, payout_id = statement.id, payout.id
    with Session(engine) as session, session.begin():
        mark_payout_paid(session, payout_id, "bank-ref")
    return Books(
        shop=shop,
        buyer_id=buyer_id,
        coupon_code=coupon_code,
        order_id=order_id,
        other_order_id=other_order_id,
        open_order_id=_open_order(shop, coupon_code),
        refund_id=refund_id,
        entry_id=settlement_entry_id(order_id),
        statement_id=statement_id,
        payout_id=payout_id,
    )


def _prepare_statement(session: Session, shop: Shop, day: date) -> Statement:
    """The shop's statement for the day; on a database before revision 0016, as the code
    before it wrote one: what it covers listed in statement_entries, and no range (the
    column is there only while today's code writes the statement)."""
    columns = {c["name"] for c in inspect(session.connection()).get_columns("statements")}
    before_ranges = "covers_through" not in columns
    if before_ranges:
        session.execute(text("ALTER TABLE statements ADD COLUMN covers_through BIGINT"))
    statement = prepare_statement(session, shop.merchant_id, shop.currency, day, datetime.now(UTC))
    assert statement is not None
    if before_ranges:
        covered = covered_entry_ids(statement).subquery()
        listed = select(covered.c[0], literal(statement.id))
        session.execute(insert(StatementEntry).from_select(["entry_id", "statement_id"], listed))
        session.execute(text("ALTER TABLE statements DROP COLUMN covers_through"))
    return statement


def _review(shop: Shop, order_id: str, buyer_id: str) -> Review:
    return Review(
        order_id=order_id,
        merchant_id=shop.merchant_id,
        buyer_id=buyer_id,
        rating=5,
        text="Good tea",
        created_at=datetime.now(UTC),
    )


def _open_order(shop: Shop, coupon_code: str) -> str:
    """An order as the saga leaves it awaiting payment: 2 x 1000 less the coupon's 100."""
    order_id, now = new_id("ord"), datetime.now(UTC)
    with Session(shop.engine) as session, session.begin():
        session.add(
            Order(
                id=order_id,
                merchant_id=shop.merchant_id,
                channel=shop.channel,
                currency=shop.currency,
                total_amount=2000,
                discount_amount=100,
                payable_amount=1900,
                coupon_code=coupon_code,
                channel_fee_rate="0.006",
                commission_rate="0.05",
                payment_timeout_seconds=900,
                status=OrderStatus.AWAITING_PAYMENT,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        session.add_all(
            [
                OrderLine(
                    order_id=order_id,
                    line_no=0,
                    sku="tea-001",
                    name="Oolong tea",
                    quantity=2,
                    unit_amount=1000,
                    line_total=2000,
                    discount_amount=100,
                    payable_amount=1900,
                ),
                CouponRedemption(
                    order_id=order_id,
                    coupon_code=coupon_code,
                    status="reserved",
                    updated_at=now,
                ),
                Payment(
                    order_id=order_id,
                    channel=shop.channel,
                    checkout_url="https://pay.example/checkout",
                    status="pending",
                    amount=1900,
                    currency=shop.currency,
                    updated_at=now,
                ),
                IdempotencyKey(
                    key=f"buyer:{new_id('usr')}:{order_id}",
                    request_hash="0" * 64,
                    order_id=order_id,
                    created_at=now,
                ),
            ]
        )
    return order_id
