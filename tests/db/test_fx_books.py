"""A CNY shop's orders paid in USD and JPY, on SQLite and PostgreSQL: capture through the
FX positions, refunds in the buyer's currency at the quoted rate, the channel's
conversion realised, statements. After each test the shop's books reconcile (the
`shop` fixture), which for these orders is the identity in each currency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlmodel import Session, col, func, select

from api.services.fx_report import fx_report
from db.fx_books import (
    fx_order_problems,
    open_position,
    order_quote,
    realise_order_fx,
    realise_order_fx_at_rate,
    refund_charge,
)
from db.order_money import complete_refund, fail_refund, release_funds, reserve_refund
from db.settlement import prepare_statement
from db.tables import Account, FxRealisation, JournalEntry, Order, Payment, Posting, Refund
from domain.fx.quotes import Quote
from domain.ledger import AccountKind, normal_balance
from domain.refunds import RefundAsk, RefundRejected, Requester
from tests.db.conftest import Shop, new_id
from tests.db.fx_orders import quoted_paid_order

WINDOW = timedelta(days=14)


def refund(shop: Shop, order_id: str, amount: int) -> Refund:
    ask = RefundAsk(
        refund_id=new_id("rf"), order_id=order_id, requested_by=Requester.OPERATOR, amount=amount
    )
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        return reserve_refund(session, ask, WINDOW)


def complete(shop: Shop, refund_id: str) -> None:
    with Session(shop.engine) as session, session.begin():
        complete_refund(session, refund_id)


def realise(shop: Shop, order_id: str, settled: int, key: str | None = None) -> FxRealisation:
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        row = realise_order_fx(session, order_id, key or new_id("sweep"), settled)
    assert row is not None
    return row


def order_sums(shop: Shop, order_id: str) -> dict[str, int]:
    """The order's own postings by account, in each account's normal balance."""
    with Session(shop.engine) as session:
        rows = session.exec(
            select(Posting.account, func.sum(Posting.amount))
            .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
            .where(JournalEntry.order_id == order_id)
            .group_by(col(Posting.account))
        ).all()
    return {
        account: normal_balance(AccountKind(account.split(":")[0]), int(total))
        for account, total in rows
    }


def problems(shop: Shop, order_id: str) -> list[str]:
    with Session(shop.engine) as session:
        order = session.get_one(Order, order_id)
        payment = session.exec(select(Payment).where(Payment.order_id == order_id)).one()
        return fx_order_problems(session, order, payment.amount)


def positions(shop: Shop, order_id: str, quote: Quote) -> tuple[int, int]:
    sums = order_sums(shop, order_id)
    return (
        sums.get(f"fx_position:platform:{quote.price_currency}", 0),
        sums.get(f"fx_position:platform:{quote.presentment_currency}", 0),
    )


def near_mid_settlement(quote: Quote, presentment_amount: int, drift: Decimal) -> int:
    """What a channel converting at our mid moved by `drift` gives for the money."""
    exact = Decimal(presentment_amount) / quote.mid_rate.value
    shift = {"USD": 0, "JPY": 2, "EUR": 0}[quote.presentment_currency]
    return int((exact * (1 + drift)).scaleb(shift).to_integral_value())


@pytest.mark.parametrize("presentment", ["USD", "JPY"])
def test_capture_pays_the_merchant_the_price_and_holds_the_buyers_money(
    shop: Shop, presentment: str
) -> None:
    order_id, quote = quoted_paid_order(shop, presentment)
    sums = order_sums(shop, order_id)
    with Session(shop.engine) as session:
        order = session.get_one(Order, order_id)
        assert order_quote(session, order) == quote
    assert sums[f"channel_clearing:{shop.channel}:{presentment}"] == quote.presentment_amount
    assert sums[f"fx_markup_revenue:platform:{presentment}"] == quote.markup_revenue > 0
    assert sums[f"merchant_pending:{shop.merchant_id}:CNY"] == order.merchant_net_amount
    assert positions(shop, order_id, quote) == (10_000, -quote.mid_presentment_amount)
    assert problems(shop, order_id) == []


@pytest.mark.parametrize("presentment", ["USD", "JPY"])
def test_partial_then_full_refund_gives_the_buyer_back_exactly_what_they_paid(
    shop: Shop, presentment: str
) -> None:
    order_id, quote = quoted_paid_order(shop, presentment)
    first = refund(shop, order_id, 3_333)
    with Session(shop.engine) as session:
        first_back = refund_charge(session, first)
    assert first_back[1] == presentment
    assert 0 < first_back[0] < quote.presentment_amount
    complete(shop, first.id)
    assert problems(shop, order_id) == []
    rest = refund(shop, order_id, 6_667)
    complete(shop, rest.id)
    with Session(shop.engine) as session:
        rest_back = refund_charge(session, rest)
    assert first_back[0] + rest_back[0] == quote.presentment_amount
    sums = order_sums(shop, order_id)
    assert sums[f"channel_clearing:{shop.channel}:{presentment}"] == 0
    assert sums.get(f"fx_markup_revenue:platform:{presentment}", 0) == 0
    assert positions(shop, order_id, quote) == (0, 0)
    assert problems(shop, order_id) == []


def test_a_failed_refund_puts_both_currencies_back(shop: Shop) -> None:
    order_id, _ = quoted_paid_order(shop, "USD")
    before = order_sums(shop, order_id)
    asked = refund(shop, order_id, 4_000)
    with Session(shop.engine) as session, session.begin():
        fail_refund(session, asked.id, "declined")
    after = {account: amount for account, amount in order_sums(shop, order_id).items() if amount}
    assert after == {account: amount for account, amount in before.items() if amount}
    assert problems(shop, order_id) == []


@pytest.mark.parametrize("presentment", ["USD", "JPY"])
def test_the_channels_settlement_leaves_the_positions_flat(shop: Shop, presentment: str) -> None:
    order_id, quote = quoted_paid_order(shop, presentment)
    partial = refund(shop, order_id, 2_500)
    complete(shop, partial.id)
    with Session(shop.engine) as session:
        order = session.get_one(Order, order_id)
        still_open = open_position(session, order, quote).presentment_open
    settled = near_mid_settlement(quote, still_open, Decimal("-0.01"))  # 1% worse than mid
    key = new_id("sweep")
    row = realise(shop, order_id, settled, key)
    assert realise(shop, order_id, settled + 999, key).settled_amount == settled  # once per key
    assert row.presentment_amount == still_open
    assert positions(shop, order_id, quote) == (0, 0)
    assert row.gain_loss_amount < 0  # the channel's rate was worse than ours
    assert row.markup_amount > 0
    sums = order_sums(shop, order_id)
    assert sums[f"channel_clearing:{shop.channel}:CNY"] == settled
    assert sums["fx_gain_loss:platform:CNY"] == row.gain_loss_amount
    assert problems(shop, order_id) == []
    # A refund after settlement reopens the positions; the channel's next settlement
    # (taking CNY to pay the buyer's USD) closes them again.
    late = refund(shop, order_id, 7_500)
    complete(shop, late.id)
    assert positions(shop, order_id, quote) != (0, 0)
    assert problems(shop, order_id) == []
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        again = realise_order_fx_at_rate(
            session, order_id, new_id("sweep"), 1 / quote.mid_rate.value
        )
    assert again is not None and again.settled_amount < 0
    assert positions(shop, order_id, quote) == (0, 0)
    assert problems(shop, order_id) == []
    # The operators' FX report sums the day's realisations of the channel.
    with Session(shop.engine) as session:
        report = fx_report(session, datetime.now(UTC).date(), shop.channel)
    [line] = report.lines
    assert (line.realisations, line.presentment_currency) == (2, presentment)
    assert line.gain_loss_amount == row.gain_loss_amount + again.gain_loss_amount
    assert line.settled_amount == settled + again.settled_amount


def test_a_released_quoted_order_states_and_pays_out_in_the_merchants_currency(
    shop: Shop,
) -> None:
    order_id, _ = quoted_paid_order(shop, "JPY", price=20_000)
    with Session(shop.engine) as session, session.begin():
        release_funds(session, order_id)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    with Session(shop.engine, expire_on_commit=False) as session, session.begin():
        statement = prepare_statement(session, shop.merchant_id, "CNY", tomorrow, datetime.now(UTC))
    assert statement is not None
    with Session(shop.engine) as session:
        order = session.get_one(Order, order_id)
        assert statement.gross_amount == 20_000
        assert statement.payout_amount == order.merchant_net_amount
        in_jpy = session.exec(
            select(Account).where(Account.owner == shop.merchant_id, Account.currency == "JPY")
        ).all()
    assert in_jpy == []  # the merchant never holds the buyer's currency


def fail(shop: Shop, refund_id: str) -> None:
    with Session(shop.engine) as session, session.begin():
        fail_refund(session, refund_id, "declined")


@pytest.mark.parametrize("presentment", ["USD", "JPY"])
def test_refunding_all_but_what_the_buyers_currency_cannot_express_closes_the_order(
    shop: Shop, presentment: str
) -> None:
    """A CNY fen is worth under half a cent or yen: refunding all but the last two gives
    the buyer everything back. Those two fen stay the merchant's, and the platform's CNY
    position that paid for them is a rounding loss, booked when the buyer's side closes."""
    order_id, quote = quoted_paid_order(shop, presentment)
    most = refund(shop, order_id, quote.price_amount - 2)
    with Session(shop.engine) as session:
        assert refund_charge(session, most)[0] == quote.presentment_amount
    complete(shop, most.id)
    assert positions(shop, order_id, quote) == (0, 0)
    assert order_sums(shop, order_id)["fx_rounding:platform:CNY"] == -2  # a loss of 2 fen
    assert problems(shop, order_id) == []
    with pytest.raises(RefundRejected) as rejected:
        refund(shop, order_id, 2)
    assert rejected.value.code == "amount_too_small"


def test_a_refund_that_fails_between_two_others_still_returns_exactly_what_was_paid(
    shop: Shop,
) -> None:
    """Refunds are shared out on running totals; one failing out of order must not give
    the buyer a unit more or less than they paid once the whole price is refunded."""
    order_id, quote = quoted_paid_order(shop, "USD", price=10_001)
    first = refund(shop, order_id, 3_337)
    second = refund(shop, order_id, 3_337)
    fail(shop, first.id)
    third = refund(shop, order_id, 10_001 - 3_337)
    for done in (second, third):
        complete(shop, done.id)
    with Session(shop.engine) as session:
        given_back = sum(refund_charge(session, r)[0] for r in (second, third))
    assert given_back == quote.presentment_amount
    assert positions(shop, order_id, quote) == (0, 0)
    assert problems(shop, order_id) == []
