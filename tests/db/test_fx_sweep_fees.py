"""What our books say a channel kept in fees on a quoted order, like for like with the
channel's own figure: the card takes the buyer's USD and charges its fee on that USD (and
gives it back with refunds, in proportion); ours is booked in CNY on the price. The day's
booked fees therefore count such an order in USD, at our fee rate on the USD taken,
returned refund by refund as the channel returns it, and a converted transfer's check
converts that sum at the transfer's own rate by the one rounding rule."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import Session

from db.sweeps import booked_day, converted_fees
from domain.fx.conversion import convert
from domain.money import apply_rate
from tests.db.conftest import Shop
from tests.db.fx_orders import CARD_FEE, quoted_paid_order
from tests.db.test_fx_books import complete, refund


def _booked(shop: Shop) -> tuple[dict[str, int], dict[str, int]]:
    with Session(shop.engine) as session:
        day = booked_day(session, shop.channel, datetime.now(UTC).date())
    return day.fees, day.refunds


def test_a_quoted_orders_fee_is_booked_in_the_currency_the_channel_took(shop: Shop) -> None:
    order_id, quote = quoted_paid_order(shop, "USD", price=10_000)
    paid = quote.presentment_amount
    fee = apply_rate(paid, CARD_FEE)  # the channel's fee on the USD it took
    fees, refunds = _booked(shop)
    assert fees == {"USD": fee}  # not the CNY fee on the price, labelled USD
    assert refunds == {}

    first = refund(shop, order_id, 3_000)
    complete(shop, first.id)
    fees, refunds = _booked(shop)
    [given_back] = refunds.values()
    assert set(refunds) == {"USD"} and 0 < given_back < paid  # the buyer's USD, not CNY
    assert "CNY" not in fees and 0 < fees["USD"] < fee

    rest = refund(shop, order_id, 7_000)
    complete(shop, rest.id)
    fees, refunds = _booked(shop)
    assert refunds == {"USD": paid}  # the whole payment given back...
    assert fees == {"USD": 0}  # ... and with it the whole fee, as the channel returns it


def test_a_converted_transfers_fees_convert_as_one_sum_by_the_one_rule() -> None:
    rate = Decimal("7.1234")
    assert converted_fees(303, "USD", "CNY", rate) == convert(303, "USD", "CNY", rate).target_amount
    assert converted_fees(-303, "USD", "CNY", rate) == -converted_fees(303, "USD", "CNY", rate)
    assert converted_fees(0, "USD", "JPY", Decimal("151.2")) == 0
