"""A quoted (cross-currency) order's money in the ledger: capture, refunds, realisation.

The postings are `domain.fx.books`'; here they are posted, each currency as its own
entry (an entry has one currency), in the caller's transaction and idempotently by
entry id, like `db.order_money`, which calls these for orders that have a quote:

    {order}:settlement      SETTLEMENT in P       the split, funded by fx_position P
    {order}:settlement:fx   FX_CONVERSION in B    clearing B -> markup + fx_position B
    {refund}:reserve        REFUND_RESERVED in P  the parts -> fx_position P
    {refund}:reserve:fx     FX_CONVERSION in B    fx_position + markup -> refunds in flight B
    {refund}:return(:fx)    REFUND_FAILED / FX_CONVERSION: the mirror of the two above
    {key}:fx:P, {key}:fx:B  FX_REALISED           `realise_order_fx`: positions flat

Statements are unchanged: the merchant's money moves in P by the same entry kinds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import func
from sqlmodel import Session, col, select

from db.ledger import post_entry
from db.payments import current_payment
from db.tables import (
    FxRealisation,
    JournalEntry,
    Order,
    OrderQuote,
    Payment,
    Posting,
    PresentmentRefund,
    Refund,
)
from domain.fx.books import (
    CurrencyPostings,
    OpenPosition,
    Realisation,
    capture_postings,
    close_postings,
    realise_postings,
    refund_postings,
    residual_in_price_units,
)
from domain.fx.conversion import convert
from domain.fx.quotes import Quote, QuotedRefund, ReturnedSoFar, refund_quoted
from domain.fx.terms import QuoteTerms
from domain.keys import compensation_entry_id
from domain.ledger import AccountKind as K
from domain.ledger import EntryKind, PostingLine, account_parts, refund_complete_postings
from domain.refunds import RefundRejected, RefundStatus
from domain.split import Split


def store_quote(session: Session, order_id: str, terms: QuoteTerms) -> None:
    session.add(
        OrderQuote(
            id=terms.quote_id,
            order_id=order_id,
            price_currency=terms.price_currency,
            price_amount=terms.price_amount,
            presentment_currency=terms.presentment_currency,
            presentment_amount=terms.presentment_amount,
            mid_rate=str(terms.mid_rate),
            customer_rate=str(terms.customer_rate),
            markup_bps=terms.markup_bps,
            markup_amount=terms.markup_amount,
            mid_residual=str(terms.mid_residual),
            rate_source=terms.rate_source,
            rate_as_of=terms.rate_as_of,
            created_at=terms.created_at,
            expires_at=terms.expires_at,
        )
    )


def quote_terms(row: OrderQuote) -> QuoteTerms:
    return QuoteTerms(
        quote_id=row.id,
        price_amount=row.price_amount,
        price_currency=row.price_currency,
        presentment_amount=row.presentment_amount,
        presentment_currency=row.presentment_currency,
        mid_rate=Decimal(row.mid_rate),
        customer_rate=Decimal(row.customer_rate),
        markup_bps=row.markup_bps,
        markup_amount=row.markup_amount,
        mid_residual=Decimal(row.mid_residual),
        rate_source=row.rate_source,
        rate_as_of=_utc(row.rate_as_of),
        created_at=_utc(row.created_at),
        expires_at=_utc(row.expires_at),
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def order_quote(session: Session, order: Order) -> Quote | None:
    """The order's quote, if its buyer pays in another currency than its price.

    Looked up only when its payment is in another currency: the order row does not say,
    and the ledger's code also runs on databases from before revision 0009.
    """
    payment = current_payment(session, order.id)
    if payment is None or payment.currency == order.currency:
        return None
    row = session.exec(select(OrderQuote).where(OrderQuote.order_id == order.id)).first()
    return None if row is None else quote_terms(row).quote()


def _post(
    session: Session,
    order: Order,
    entry_id: str,
    kinds: tuple[EntryKind, EntryKind],
    postings: CurrencyPostings,
    quote: Quote,
) -> None:
    """The P lines under `entry_id`, the B lines under `entry_id:fx`; nothing moves nothing."""
    for suffix, kind, lines, currency in (
        ("", kinds[0], postings.price, quote.price_currency),
        (":fx", kinds[1], postings.presentment, quote.presentment_currency),
    ):
        if lines:
            post_entry(
                session,
                entry_id=f"{entry_id}{suffix}",
                kind=kind,
                currency=currency,
                postings=lines,
                order_id=order.id,
                merchant_id=order.merchant_id,
            )


def _mirror(postings: CurrencyPostings) -> CurrencyPostings:
    def flip(lines: list[PostingLine]) -> list[PostingLine]:
        return [PostingLine(line.account, -line.amount) for line in lines]

    return CurrencyPostings(flip(postings.price), flip(postings.presentment))


def capture_quoted(
    session: Session, order: Order, quote: Quote, split: Split, entry_id: str
) -> None:
    postings = capture_postings(order.channel, order.merchant_id, quote, split)
    kinds = (EntryKind.SETTLEMENT, EntryKind.FX_CONVERSION)
    _post(session, order, entry_id, kinds, postings, quote)


def reserve_quoted_refund(
    session: Session, order: Order, quote: Quote, refund_id: str, parts: Split, entry_id: str
) -> PresentmentRefund:
    """Post a refund's parts at the quoted rate; returns the row of what the buyer gets
    back, for the caller to add once the refund row is flushed (it names it).

    Called with the order locked and before `order.refunded_amount` counts this refund.
    """
    returned = refund_quoted(
        quote, order.refunded_amount, parts.payable_amount, _returned_so_far(session, order.id)
    )
    if returned.presentment_amount == 0:  # the merchant would pay, the buyer get nothing
        raise RefundRejected(
            "amount_too_small",
            f"{parts.payable_amount} {quote.price_currency} minor units give back less than"
            f" one {quote.presentment_currency} minor unit at the quoted rate",
            "amount",
        )
    released = order.funds_released_at is not None
    postings = refund_postings(
        order.channel, order.merchant_id, quote, parts, returned, released=released
    )
    kinds = (EntryKind.REFUND_RESERVED, EntryKind.FX_CONVERSION)
    _post(session, order, entry_id, kinds, postings, quote)
    _close_if_given_back(session, order, quote, entry_id)
    return PresentmentRefund(
        refund_id=refund_id,
        quote_id=quote.quote_id,
        presentment_currency=quote.presentment_currency,
        presentment_amount=returned.presentment_amount,
        markup_returned=returned.markup_returned,
        residual=str(returned.residual),
    )


def reserve_quoted_compensation(
    session: Session, order: Order, quote: Quote, left: Split, entry_id: str
) -> None:
    """A saga's compensation of a quoted order: what is left of the split leaves its
    holders in P, and the buyer's share of the payment waits in refunds in flight in B,
    the currency the channel gives it back in (the saga's refund is the payment's)."""
    returned = refund_quoted(
        quote, order.refunded_amount, left.payable_amount, _returned_so_far(session, order.id)
    )
    postings = refund_postings(
        order.channel, order.merchant_id, quote, left, returned, released=False
    )
    kinds = (EntryKind.REFUND_RESERVED, EntryKind.FX_CONVERSION)
    _post(session, order, entry_id, kinds, postings, quote)
    _close_if_given_back(session, order, quote, entry_id)


def return_quoted_refund(
    session: Session, order: Order, quote: Quote, refund: Refund, parts: Split, entry_id: str
) -> None:
    """The channel refused the refund: mirror its two entries."""
    row = session.get_one(PresentmentRefund, refund.id)
    returned = _returned(row)
    released = order.funds_released_at is not None
    postings = refund_postings(
        order.channel, order.merchant_id, quote, parts, returned, released=released
    )
    kinds = (EntryKind.REFUND_FAILED, EntryKind.FX_CONVERSION)
    _post(session, order, entry_id, kinds, _mirror(postings), quote)
    _close_if_given_back(session, order, quote, entry_id)


def _close_if_given_back(session: Session, order: Order, quote: Quote, entry_id: str) -> None:
    """After a movement in the buyer's currency: when none of it is left open, the P
    position left over is rounding (`domain.fx.books.close_postings`), under
    `{entry_id}:fx:close`."""
    session.flush()
    lines = close_postings(open_position(session, order, quote))
    if lines:
        post_entry(
            session,
            entry_id=f"{entry_id}:fx:close",
            kind=EntryKind.FX_REALISED,
            currency=quote.price_currency,
            postings=lines,
            order_id=order.id,
            merchant_id=order.merchant_id,
        )


def _returned_so_far(session: Session, order_id: str) -> ReturnedSoFar:
    rows = [row for _, row in _live_refunds(session, order_id)]
    return ReturnedSoFar(
        sum(row.presentment_amount for row in rows), sum(row.markup_returned for row in rows)
    )


def _returned(row: PresentmentRefund) -> QuotedRefund:
    return QuotedRefund(row.presentment_amount, row.markup_returned, Decimal(row.residual))


def presentment_refund(session: Session, refund: Refund) -> PresentmentRefund | None:
    """What a refund gives back in the buyer's currency, if its order was quoted."""
    order = session.get_one(Order, refund.order_id)
    if refund.currency != order.currency or order_quote(session, order) is None:
        return None  # a saga's own refund is in the payment's currency already
    return session.get(PresentmentRefund, refund.id)


def refund_charge(session: Session, refund: Refund) -> tuple[int, str]:
    """What the channel is asked to give back: the buyer's currency for a quoted order."""
    row = presentment_refund(session, refund)
    if row is None:
        return refund.amount, refund.currency
    return row.presentment_amount, row.presentment_currency


def complete_postings(session: Session, refund: Refund) -> tuple[str, list[PostingLine]]:
    """(currency, postings) of a refund's completion: out of clearing in the buyer's money."""
    amount, currency = refund_charge(session, refund)
    return currency, refund_complete_postings(refund.channel, currency, amount)


def order_sums(session: Session, order_id: str) -> dict[str, int]:
    """The order's own postings summed by account (debit-positive)."""
    rows = session.exec(
        select(Posting.account, func.sum(Posting.amount))
        .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
        .where(JournalEntry.order_id == order_id)
        .group_by(col(Posting.account))
    ).all()
    return {account: int(total) for account, total in rows}


def _platform(kind: K, currency: str) -> str:
    return f"{kind.value}:platform:{currency}"


def _live_refunds(session: Session, order_id: str) -> list[tuple[Refund, PresentmentRefund]]:
    rows = session.exec(
        select(Refund, PresentmentRefund)
        .join(PresentmentRefund, col(PresentmentRefund.refund_id) == Refund.id)
        .where(Refund.order_id == order_id, Refund.status != RefundStatus.FAILED)
    ).all()
    return [(refund, row) for refund, row in rows]


def open_position(session: Session, order: Order, quote: Quote) -> OpenPosition:
    """What the order holds in the FX accounts now, and the rounding it owes in P."""
    sums = order_sums(session, order.id)
    price, presentment = quote.price_currency, quote.presentment_currency
    residual = -Fraction(quote.mid_residual) if order.merchant_net_amount is not None else 0
    for _, row in _live_refunds(session, order.id):
        residual += Fraction(Decimal(row.residual))
    return OpenPosition(
        presentment_currency=presentment,
        price_currency=price,
        position_presentment=sums.get(_platform(K.FX_POSITION, presentment), 0),
        markup_presentment=sums.get(_platform(K.FX_MARKUP_REVENUE, presentment), 0),
        position_price=sums.get(_platform(K.FX_POSITION, price), 0),
        residual_price=residual_in_price_units(quote, Fraction(residual)),
        rounding_posted=-sums.get(_platform(K.FX_ROUNDING, price), 0),
    )


def realise_order_fx(
    session: Session, order_id: str, key: str, settled_amount: int
) -> FxRealisation | None:
    """The channel turned the order's open money into `settled_amount` of its price
    currency: post the FX_REALISED entries (positions flat, the difference to FX gain/loss
    and rounding) and record it, once per `key`. None when nothing is open.

    For the channel-sweep code: call it in the sweep's transaction for every quoted order
    the sweep settles, with the amount the channel's bill line gives for it.
    """
    order = session.exec(select(Order).where(Order.id == order_id).with_for_update()).one()
    existing = session.get(FxRealisation, key)
    if existing is not None:
        return existing
    quote = order_quote(session, order)
    if quote is None:
        raise ValueError(f"order {order_id} has no quote: nothing to realise")
    position = open_position(session, order, quote)
    if position.presentment_open == 0:
        return None
    realised = realise_postings(order.channel, position, settled_amount)
    _post_realisation(session, order, key, quote, realised)
    row = FxRealisation(
        id=key,
        order_id=order.id,
        channel=order.channel,
        presentment_currency=quote.presentment_currency,
        presentment_amount=realised.presentment_amount,
        settlement_currency=quote.price_currency,
        settled_amount=realised.settled_amount,
        markup_amount=realised.markup_amount,
        rounding_amount=realised.rounding_amount,
        gain_loss_amount=realised.gain_loss_amount,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row


def realise_order_fx_at_rate(
    session: Session, order_id: str, key: str, channel_rate: Decimal
) -> FxRealisation | None:
    """`realise_order_fx` where the channel gives its rate (price units per presentment
    unit) instead of an amount: the open money converted by the one rounding rule."""
    order = session.exec(select(Order).where(Order.id == order_id).with_for_update()).one()
    quote = order_quote(session, order)
    if quote is None:
        raise ValueError(f"order {order_id} has no quote: nothing to realise")
    open_amount = open_position(session, order, quote).presentment_open
    if open_amount == 0 or session.get(FxRealisation, key) is not None:
        return session.get(FxRealisation, key)
    converted = convert(open_amount, quote.presentment_currency, quote.price_currency, channel_rate)
    return realise_order_fx(session, order_id, key, converted.target_amount)


def _post_realisation(
    session: Session, order: Order, key: str, quote: Quote, realised: Realisation
) -> None:
    for currency, lines in (
        (quote.price_currency, realised.postings.price),
        (quote.presentment_currency, realised.postings.presentment),
    ):
        if lines:
            post_entry(
                session,
                entry_id=f"{key}:fx:{currency}",
                kind=EntryKind.FX_REALISED,
                currency=currency,
                postings=lines,
                order_id=order.id,
                merchant_id=order.merchant_id,
            )


# -- proof: the order identity in each currency -------------------------------------------


def quoted_order_ids(session: Session, paid: Sequence[tuple[Order, Payment]]) -> set[str]:
    """The paid orders of `paid` that were quoted (paid in another currency than priced)."""
    order_ids = [order.id for order, payment in paid if payment.currency != order.currency]
    if not order_ids:
        return set()
    rows = session.exec(select(OrderQuote.order_id).where(col(OrderQuote.order_id).in_(order_ids)))
    return set(rows.all())


def fx_order_problems(session: Session, order: Order, paid_amount: int) -> list[str]:
    """A paid quoted order's identity in each currency it touched, from independent records
    (the payment, refund and realisation rows) against its ledger entries:

        B   paid = refunded + refunds in flight + held in FX accounts + converted
        P   price = refunded + merchant + commission + channel fee   (0 once reversed)
        P   clearing = what the channel delivered;  FX position P flat when B is closed
    """
    quote = order_quote(session, order)
    assert quote is not None
    sums = order_sums(session, order.id)
    price, presentment = quote.price_currency, quote.presentment_currency
    by_kind: dict[tuple[K, str], int] = defaultdict(int)
    for account, total in sums.items():
        kind, _, currency = account_parts(account)
        by_kind[(kind, currency)] -= total  # credit-positive
    refunds = session.exec(
        select(Refund).where(Refund.order_id == order.id, Refund.reason != "late_payment")
    ).all()
    shown = {row.refund_id: row for _, row in _live_refunds(session, order.id)}
    refunded_b = pending_b = refunded_p = 0
    for refund in refunds:
        b = shown[refund.id].presentment_amount if refund.id in shown else refund.amount
        if refund.id in shown:
            refunded_p += refund.amount if refund.status != RefundStatus.FAILED else 0
        if refund.status == RefundStatus.SUCCEEDED:
            refunded_b += b
        elif refund.status == RefundStatus.PENDING and refund.requested_by != "system":
            pending_b += b
    comp_p, comp_b = _compensated(session, order.id, price, presentment)
    refunded_p += comp_p  # the saga gave the merchant's split back (in flight or gone)
    if not any(r.reason == "compensation" and r.status == RefundStatus.SUCCEEDED for r in refunds):
        pending_b += comp_b  # until the channel confirms it, in flight
    realisations = session.exec(
        select(FxRealisation).where(FxRealisation.order_id == order.id)
    ).all()
    converted = sum(r.presentment_amount for r in realisations)
    delivered = sum(r.settled_amount for r in realisations)
    in_flight_b = by_kind[(K.REFUNDS_IN_FLIGHT, presentment)]
    open_b = -(
        sums.get(_platform(K.FX_POSITION, presentment), 0)
        + sums.get(_platform(K.FX_MARKUP_REVENUE, presentment), 0)
    )
    held_p = sum(
        by_kind[(kind, price)]
        for kind in (K.MERCHANT_PENDING, K.MERCHANT_AVAILABLE, K.PLATFORM_COMMISSION, K.CHANNEL_FEE)
    )
    reversed_ = session.exec(
        select(JournalEntry.id).where(JournalEntry.reverses_entry_id == f"{order.id}:settlement")
    ).first()
    expected_p = (
        0 if reversed_ is not None or order.merchant_net_amount is None else quote.price_amount
    )
    name = f"order {order.id}"
    problems = []
    if paid_amount != refunded_b + in_flight_b + open_b + converted:
        problems.append(
            f"{name} {presentment}: paid {paid_amount} != refunded {refunded_b} + in flight "
            f"{in_flight_b} + open {open_b} + converted {converted}"
        )
    if in_flight_b != pending_b:
        problems.append(f"{name} {presentment}: {pending_b} pending refunds, ledger {in_flight_b}")
    if expected_p != refunded_p + held_p:
        problems.append(f"{name} {price}: price {expected_p} != refunded {refunded_p} + {held_p}")
    clearing_p = -by_kind[(K.CHANNEL_CLEARING, price)]
    if clearing_p != delivered:
        problems.append(f"{name} {price}: clearing {clearing_p}, channel delivered {delivered}")
    position_p = sums.get(_platform(K.FX_POSITION, price), 0)
    if open_b == 0 and position_p != 0:
        problems.append(f"{name}: {presentment} closed but FX position {price} is {position_p}")
    return problems


def _compensated(session: Session, order_id: str, price: str, presentment: str) -> tuple[int, int]:
    """What the saga's compensation moved (`reserve_quoted_compensation`): the price it took
    from the split (P) and what it holds for the buyer in refunds in flight (B)."""
    entry_id = compensation_entry_id(order_id)
    rows = session.exec(
        select(Posting.account, Posting.amount).where(
            col(Posting.entry_id).in_([entry_id, f"{entry_id}:fx"])
        )
    ).all()
    taken_p = held_b = 0
    for account, amount in rows:
        kind, _, currency = account_parts(account)
        if kind == K.FX_POSITION and currency == price:
            taken_p -= amount
        elif kind == K.REFUNDS_IN_FLIGHT and currency == presentment:
            held_b -= amount
    return taken_p, held_b
