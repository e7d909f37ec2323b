"""Orders racing for one coupon through the saga's own `OrderRecords.record_order`.

Sixteen threads, released together behind a barrier, each record a different order with
the same coupon through the real activity method and a real session factory. On
PostgreSQL the coupon row's `SELECT ... FOR UPDATE` makes them count and insert their
holds in turn; on SQLite `BEGIN IMMEDIATE` does. Either way exactly as many orders are
reserved as running them one after the other would reserve: never more than the
coupon's quantity, nor than a buyer's limit. Every other order is refused
`COUPON_REJECTED` (its code in the details) and leaves no row behind. Nothing retries:
a deadlock or a duplicate key would be a finding.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlmodel import Session, col, select
from temporalio.exceptions import ApplicationError

from activities.errors import COUPON_REJECTED
from activities.order_records import OrderRecords
from db.coupons import check_hold_allowed, coupon_holds, hold_counts
from db.engine import session_factory
from db.tables import Coupon, CouponRedemption, Order
from domain.errors import CouponRejected
from domain.order_status import OrderStatus
from domain.pricing import OrderLine, price_order
from domain.saga import OrderInput, PaymentRecord, StatusChange
from tests.db.conftest import Shop, make_coupon, new_buyer, new_id

THREADS = 16


@dataclass(frozen=True)
class Outcome:
    order_id: str
    buyer_id: str | None
    refused: str | None = None  # the refusal's code: coupon_already_used, ...
    error: Exception | None = None  # anything else


def order_for(shop: Shop, code: str, buyer_id: str | None = None) -> OrderInput:
    lines = [OrderLine(sku="tea-001", name="Oolong tea", quantity=2, unit_amount=1999)]
    return OrderInput(
        order_id=new_id("ord"),
        merchant_id=shop.merchant_id,
        channel=shop.channel,
        buyer_id=buyer_id,
        priced=price_order(lines, shop.currency, None, datetime.now(UTC)),
        coupon_code=code,
        channel_fee_rate=Decimal("0.006"),
        commission_rate=Decimal("0.05"),
        payment_timeout_seconds=900,
        notify_url="http://127.0.0.1/notify",
    )


def record_racing(records: OrderRecords, orders: Sequence[OrderInput]) -> list[Outcome]:
    """Record every order in its own thread, all released at once."""
    barrier = threading.Barrier(len(orders))

    def record(order: OrderInput) -> Outcome:
        barrier.wait()
        try:
            records.record_order(order)
        except ApplicationError as refused:
            if refused.type != COUPON_REJECTED or not refused.non_retryable:
                return Outcome(order.order_id, order.buyer_id, error=refused)
            return Outcome(order.order_id, order.buyer_id, refused=str(refused.details[0]))
        except Exception as error:
            return Outcome(order.order_id, order.buyer_id, error=error)
        return Outcome(order.order_id, order.buyer_id)

    with ThreadPoolExecutor(max_workers=len(orders)) as pool:
        return list(pool.map(record, orders))


def reserved(outcomes: Sequence[Outcome]) -> list[Outcome]:
    assert [o.error for o in outcomes if o.error] == []
    return [o for o in outcomes if o.refused is None]


def refusals(outcomes: Sequence[Outcome]) -> Counter[str]:
    return Counter(o.refused for o in outcomes if o.refused is not None)


def holds_of(shop: Shop, code: str) -> dict[str, str]:
    """Order id -> status of every redemption of the coupon."""
    with Session(shop.engine) as session:
        rows = session.exec(
            select(CouponRedemption.order_id, CouponRedemption.status).where(
                CouponRedemption.coupon_code == code
            )
        ).all()
    return dict(rows)


def recorded_orders(shop: Shop, code: str) -> set[str]:
    with Session(shop.engine) as session:
        return set(session.exec(select(Order.id).where(Order.coupon_code == code)).all())


@pytest.fixture
def records(shop: Shop) -> OrderRecords:
    # Recording an order starts no webhook delivery: nothing to start here.
    return OrderRecords(session_factory(shop.engine), start_delivery=lambda _event_id: None)


def test_racing_orders_reserve_exactly_the_quantity_and_a_release_frees_one_slot(
    shop: Shop, records: OrderRecords
) -> None:
    code = make_coupon(shop, quantity=5)

    first = record_racing(records, [order_for(shop, code) for _ in range(THREADS)])

    winners = reserved(first)
    assert len(winners) == 5
    assert refusals(first) == {"coupon_already_used": THREADS - 5}
    assert holds_of(shop, code) == {o.order_id: "reserved" for o in winners}
    assert recorded_orders(shop, code) == {o.order_id for o in winners}  # refused: no row

    # Two orders close unpaid; their holds go back, and a new race takes exactly those two.
    for closed in winners[:2]:
        records.set_order_status(StatusChange(order_id=closed.order_id, status=OrderStatus.CLOSED))
    second = record_racing(records, [order_for(shop, code) for _ in range(8)])

    assert len(reserved(second)) == 2
    assert refusals(second) == {"coupon_already_used": 6}
    statuses = Counter(holds_of(shop, code).values())
    assert statuses == {"reserved": 5, "released": 2}
    with Session(shop.engine) as session:
        assert coupon_holds(session, code) == 5


def test_one_buyer_racing_is_held_to_their_limit_and_others_are_not(
    shop: Shop, records: OrderRecords
) -> None:
    code = make_coupon(shop, quantity=100, per_buyer_limit=2)
    buyer = new_buyer(shop.engine)

    outcomes = record_racing(records, [order_for(shop, code, buyer) for _ in range(12)])

    assert len(reserved(outcomes)) == 2
    assert refusals(outcomes) == {"coupon_limit_reached": 10}
    with Session(shop.engine) as session:
        stored = session.exec(
            select(CouponRedemption.buyer_id).where(CouponRedemption.coupon_code == code)
        ).all()
        assert stored == [buyer, buyer]
        # The API's early check says the same, before anything is started.
        coupon = session.get(Coupon, code)
        assert coupon is not None
        with pytest.raises(CouponRejected) as refused:
            check_hold_allowed(session, coupon, buyer)
        assert (refused.value.code, refused.value.param) == ("coupon_limit_reached", "coupon_code")
        check_hold_allowed(session, coupon, new_id("usr"))  # another buyer: allowed
        check_hold_allowed(session, coupon, None)  # an order with no buyer: allowed

    others = [
        order_for(shop, code, new_buyer(shop.engine)),
        order_for(shop, code),
        order_for(shop, code),
    ]
    assert len(reserved(record_racing(records, others))) == 3


def test_buyers_racing_for_a_small_campaign_share_it_within_their_limits(
    shop: Shop, records: OrderRecords
) -> None:
    """Four buyers with four orders each, two per buyer, six in all: whoever comes first,
    taking them in turn always ends with six holds and no buyer over two."""
    code = make_coupon(shop, quantity=6, per_buyer_limit=2)
    buyers = [new_buyer(shop.engine) for _ in range(4)]

    outcomes = record_racing(records, [order_for(shop, code, b) for b in buyers for _ in range(4)])

    winners = reserved(outcomes)
    assert len(winners) == 6
    assert max(Counter(o.buyer_id for o in winners).values()) == 2
    assert set(refusals(outcomes)) <= {"coupon_already_used", "coupon_limit_reached"}
    with Session(shop.engine) as session:
        counts = hold_counts(session, [code])[code]
    assert (counts.reserved, counts.consumed) == (6, 0)


def test_a_buyers_slot_comes_back_on_release_but_not_once_consumed(
    shop: Shop, records: OrderRecords
) -> None:
    code = make_coupon(shop, quantity=3, per_buyer_limit=1)
    buyer = new_buyer(shop.engine)

    def attempt(buyer_id: str | None) -> Outcome:
        return record_racing(records, [order_for(shop, code, buyer_id)])[0]

    first = attempt(buyer)
    assert first.refused is None
    assert attempt(buyer).refused == "coupon_limit_reached"

    records.set_order_status(StatusChange(order_id=first.order_id, status=OrderStatus.CANCELLED))
    again = attempt(buyer)
    assert again.refused is None  # the cancelled order gave the buyer's slot back

    with Session(shop.engine) as session:
        payable = session.exec(select(Order.payable_amount).where(Order.id == again.order_id)).one()
    records.record_payment(
        PaymentRecord(
            order_id=again.order_id,
            channel_txn_id=new_id("txn"),
            amount=payable,
            currency=shop.currency,
        )
    )
    assert holds_of(shop, code)[again.order_id] == "consumed"
    assert attempt(buyer).refused == "coupon_limit_reached"  # a paid order keeps its slot

    # Another buyer and an order without one fill the quantity; then it is used up.
    assert attempt(new_buyer(shop.engine)).refused is None
    assert attempt(None).refused is None
    assert attempt(new_buyer(shop.engine)).refused == "coupon_already_used"
    assert Counter(holds_of(shop, code).values()) == {
        "released": 1,
        "consumed": 1,
        "reserved": 2,
    }


def test_a_disabled_coupon_takes_no_new_holds_and_keeps_the_old_ones(
    shop: Shop, records: OrderRecords
) -> None:
    code = make_coupon(shop, quantity=10)
    held = record_racing(records, [order_for(shop, code) for _ in range(3)])
    assert len(reserved(held)) == 3

    with Session(shop.engine) as session, session.begin():
        coupon = session.get(Coupon, code)
        assert coupon is not None
        coupon.disabled_at = datetime.now(UTC)
    late = record_racing(records, [order_for(shop, code) for _ in range(4)])

    assert refusals(late) == {"coupon_disabled": 4}
    assert holds_of(shop, code) == {o.order_id: "reserved" for o in held}
    with Session(shop.engine) as session:
        assert set(session.exec(select(Order.id).where(col(Order.coupon_code) == code)).all()) == {
            o.order_id for o in held
        }
