"""The money of a saga's own refunds in the ledger: late payments and compensation.

A saga's refund (`activities.channel_calls`) is recorded as a refund row before the
channel is asked, and again with each answer. Its entries are posted in the same
transactions, keyed by the refund (or, for compensation, by the order), so the refund
rows and the books never disagree, and a retried call posts nothing twice:

    late payment   asked:     clearing +amount, late_payments -amount   (we owe it back)
                   confirmed: late_payments +amount, clearing -amount   (it left)
    compensation   asked:     the order's split parts -> refunds in flight, once per order
                              (or clearing -> refunds in flight when no split holds the money;
                              a quoted order's parts through the FX positions, into refunds
                              in flight in the buyer's currency: `db.fx_books`)
                   confirmed: refunds in flight -> out of clearing       (REFUND_COMPLETED)

A refused late payment refund leaves its liability (the order is flagged for review); a
refused compensation refund leaves the money in refunds in flight, where the next attempt
ops ask for finds it. Rows written before these entries existed (a late payment refund
still pending, an order whose settlement an earlier version reversed at once) are brought
into the books by the next answer recorded for them: the "asked" entry is posted first
whenever it is missing, so a confirmation never takes out what was never put in.
"""

from __future__ import annotations

from sqlmodel import Session

from db.fx_books import order_quote, reserve_quoted_compensation
from db.ledger import post_entry
from db.order_money import locked_order, order_split, refunded_parts
from db.tables import JournalEntry, Order, Refund
from domain.keys import (
    compensation_entry_id,
    late_payment_received_entry_id,
    late_payment_refunded_entry_id,
    refund_completion_entry_id,
    reversal_entry_id,
    settlement_entry_id,
)
from domain.ledger import (
    EntryKind,
    PostingLine,
    account_parts,
    late_payment_received_postings,
    late_payment_refunded_postings,
    refund_complete_postings,
    refund_reserve_postings,
    unsettled_refund_postings,
)
from domain.split import subtract

LATE_PAYMENT = "late_payment"
COMPENSATION = "compensation"


def book_refund_asked(session: Session, refund: Refund) -> None:
    """A saga's refund is about to be asked of the channel (or was, before these entries
    existed): book the money it gives back. Other refunds move nothing here."""
    if refund.reason == LATE_PAYMENT:
        order = locked_order(session, refund.order_id)
        postings = late_payment_received_postings(refund.channel, refund.currency, refund.amount)
        entry_id = late_payment_received_entry_id(refund.id)
        _post(session, order, entry_id, EntryKind.LATE_PAYMENT_RECEIVED, postings)
    elif refund.reason == COMPENSATION:
        _reserve_compensation(session, refund)


def book_refund_confirmed(session: Session, refund: Refund) -> None:
    """The channel confirmed a saga's refund: the money leaves clearing (once)."""
    if refund.reason not in (LATE_PAYMENT, COMPENSATION):
        return
    book_refund_asked(session, refund)  # a row from before these entries: book it first
    order = locked_order(session, refund.order_id)
    if refund.reason == LATE_PAYMENT:
        postings = late_payment_refunded_postings(refund.channel, refund.currency, refund.amount)
        entry_id = late_payment_refunded_entry_id(refund.id)
        _post(session, order, entry_id, EntryKind.LATE_PAYMENT_REFUNDED, postings)
    else:
        postings = refund_complete_postings(refund.channel, refund.currency, refund.amount)
        entry_id = refund_completion_entry_id(refund.id)
        _post(session, order, entry_id, EntryKind.REFUND_COMPLETED, postings)


def _reserve_compensation(session: Session, refund: Refund) -> None:
    """Move the order's money into refunds in flight, once per order.

    The split parts leave their holders while the settlement entry stands; when no split
    holds the money (never captured, or reversed by an earlier version), the amount the
    refund gives back is taken into clearing, where the channel still holds it.
    """
    order = locked_order(session, refund.order_id)
    if session.get(JournalEntry, compensation_entry_id(order.id)) is not None:
        return
    entry_id = compensation_entry_id(order.id)
    if _settlement_stands(session, order.id):
        left = subtract(order_split(order), refunded_parts(order))
        quote = order_quote(session, order)
        if quote is not None:  # the split is in P, the buyer is given back B
            reserve_quoted_compensation(session, order, quote, left, entry_id)
            return
        postings = refund_reserve_postings(
            order.channel, order.merchant_id, order.currency, left, released=False
        )
    else:
        postings = unsettled_refund_postings(refund.channel, refund.currency, refund.amount)
    _post(session, order, entry_id, EntryKind.REFUND_RESERVED, postings)


def _settlement_stands(session: Session, order_id: str) -> bool:
    settlement = settlement_entry_id(order_id)
    posted = session.get(JournalEntry, settlement) is not None
    return posted and session.get(JournalEntry, reversal_entry_id(settlement)) is None


def _post(
    session: Session, order: Order, entry_id: str, kind: EntryKind, postings: list[PostingLine]
) -> None:
    """Post an entry of the order, tagged with it and its merchant; nothing moves nothing."""
    if postings:
        post_entry(
            session,
            entry_id=entry_id,
            kind=kind,
            currency=postings_currency(postings),
            postings=postings,
            order_id=order.id,
            merchant_id=order.merchant_id,
        )


def postings_currency(postings: list[PostingLine]) -> str:
    return account_parts(postings[0].account)[2]
