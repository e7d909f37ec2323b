"""Merchant settlement: a statement per (merchant, day, currency) and its payout.

A statement covers every entry on the merchant's available balance posted before
its cutoff (the end of the day, or now if the day has not ended) that no earlier
statement covered. It opens with the previous statement's closing balance and
pays out what it states as available, never more than the balance holds at that
moment. The chain holds whatever the order runs happen in: after each statement,
the available balance is its closing plus the entries no statement covers yet.
The statement, the payout row and the available -> in transit entry are written in
one transaction keyed by the statement id, so running a day twice, or again after a
crash half-way, finds the statement and pays nothing more.

What a statement covers is a range of its account's postings, not a row per entry
(revision 0016). Postings on an account are numbered in the order their transactions
commit: every writer locks the account's row before a posting is numbered and holds
it until its commit (db.ledger.post_entry; here, the available accounts first). So the
postings no statement covers yet are those numbered after the account's mark (the
highest `covers_through` of its statements), and a statement covers them up to its own
`covers_through`: the new postings before the first one stamped at or after its cutoff.
A payout's own available -> in transit posting is its statement's by the payout row,
never in a range. Statements made before 0016 listed what they covered in
`statement_entries`; an entry listed there is in no range.

    opening + gross - channel fees - commission - refunds + returned - payout = closing

`opening` is what the previous statements left (negative: a clawback still to
recover); `refunds` is the merchant's part of refunds, whether taken before or
after the order completed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Insert,
    Row,
    Table,
    bindparam,
    case,
    func,
    insert,
    or_,
    text,
    union,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import CompoundSelect, Select
from sqlmodel import Session, SQLModel, col, select

from db.ledger import InsufficientFunds, post_entry
from db.tables import Account, Payout, PayoutConversion, Statement
from domain.keys import payout_entry_id, payout_id, statement_id
from domain.ledger import (
    AccountKind,
    EntryKind,
    account_id,
    normal_balance,
    payout_paid_postings,
    payout_return_postings,
    payout_start_postings,
)
from domain.settlement import PayoutCredit, PayoutStatus, statement_totals
from domain.split import Split, split_payment

log = logging.getLogger(__name__)

# The tables, for the set-wise statements below (Core: no ORM objects per row).
_ACCOUNTS: Table = SQLModel.metadata.tables["accounts"]
_ENTRIES: Table = SQLModel.metadata.tables["journal_entries"]
_POSTINGS: Table = SQLModel.metadata.tables["postings"]
_ORDERS: Table = SQLModel.metadata.tables["orders"]
_STATEMENTS: Table = SQLModel.metadata.tables["statements"]
_COVERED: Table = SQLModel.metadata.tables["statement_entries"]
_PAYOUTS: Table = SQLModel.metadata.tables["payouts"]
_PAYOUT_CONVERSIONS: Table = SQLModel.metadata.tables["payout_conversions"]
_FX_TERMS: Table = SQLModel.metadata.tables["merchant_fx_terms"]
_MERCHANTS: Table = SQLModel.metadata.tables["merchants"]


def day_cutoff(day: date, now: datetime) -> datetime:
    """The end of `day` (UTC), or now if the day is not over yet."""
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)
    return min(end, now)


def merchants_with_something_to_settle(
    session: Session, cutoff: datetime, after: str = ""
) -> list[str]:
    """Merchants (after `after`, in id order) with entries on available before `cutoff` that
    no statement covers yet, or a statement that closed with money it could not pay out then.

    One probe per remaining merchant's account (the first uncovered posting ends it), not
    a scan of the day: a run asks again for every page, after the page before it.
    """
    uncovered = (
        select(Account.owner)
        .where(
            Account.kind == AccountKind.MERCHANT_AVAILABLE.value,
            col(Account.owner) > after,
            _first_uncovered(
                col(Account.id), col(Account.owner), col(Account.currency), cutoff
            ).is_not(None),
        )
        .distinct()
    )
    carried = (
        select(Statement.merchant_id)
        .where(Statement.closing_balance > 0, col(Statement.merchant_id) > after)
        .distinct()
    )
    return sorted({*session.exec(uncovered).all(), *session.exec(carried).all()})


def merchants_with_payouts_pending(session: Session, day: date, after: str = "") -> list[str]:
    """Merchants (after `after`, in id order) with a payout of the day's statements that the
    bank has not answered yet: prepared, but perhaps never asked for."""
    p, s = _PAYOUTS.c, _STATEMENTS.c
    query = (
        core_select(p.merchant_id)
        .join_from(_PAYOUTS, _STATEMENTS, s.id == p.statement_id)
        .where(
            s.day == day.isoformat(),
            p.status == PayoutStatus.PENDING.value,
            p.merchant_id > after,
        )
        .distinct()
    )
    return sorted(session.execute(query).scalars())


def days_with_payouts_pending(
    session: Session, since: date, before: date, merchant_ids: Sequence[str] = ()
) -> list[date]:
    """The days from `since` up to `before` (excluded) with a payout of their statements
    that the bank has not answered yet (of these merchants, if any), oldest first."""
    p, s = _PAYOUTS.c, _STATEMENTS.c
    query = (
        core_select(s.day)
        .join_from(_PAYOUTS, _STATEMENTS, s.id == p.statement_id)
        .where(
            p.status == PayoutStatus.PENDING.value,
            s.day >= since.isoformat(),
            s.day < before.isoformat(),
        )
        .distinct()
    )
    if merchant_ids:
        query = query.where(p.merchant_id.in_(merchant_ids))
    return sorted(date.fromisoformat(day) for day in session.execute(query).scalars())


def day_statements(session: Session, merchant_ids: Sequence[str], day: date) -> list[str]:
    """The ids of these merchants' statements for the day, in id order."""
    s = _STATEMENTS.c
    query = core_select(s.id).where(s.merchant_id.in_(merchant_ids), s.day == day.isoformat())
    return list(session.execute(query.order_by(s.id)).scalars())


def prepare_statement(
    session: Session, merchant_id: str, currency: str, day: date, now: datetime
) -> Statement | None:
    """The statement for the day, made once; None when there is nothing to settle."""
    prepare_statements(session, [merchant_id], day, now, currency=currency)
    return session.get(Statement, statement_id(merchant_id, day, currency))


def prepare_statements(
    session: Session,
    merchant_ids: Sequence[str],
    day: date,
    now: datetime,
    currency: str | None = None,
) -> list[str]:
    """Each merchant's statements for the day (one per currency it has an available balance
    in, or `currency` only), made once, set-wise: a page of merchants costs a few statements
    whatever its size, not a few per merchant.

    The available accounts are locked first (in id order: their payouts' in-transit
    accounts, which sort after them, are updated after them); a statement already made
    for the day is left as it is. The rest are read in a few queries (the previous
    statements; the accounts' marks; one GROUP BY over the new postings: their sums per
    kind and the released orders' splits per distinct amount and rates), stated by
    `statement_totals` as one statement is, and written with their ranges and payouts in
    a few set-wise statements, in the caller's transaction. Returns the ids of the
    merchants' statements for the day (made now or before), in id order.
    """
    session.flush()  # what the caller changed through the ORM, before the SQL below
    accounts = _locked_available(session, merchant_ids, currency)
    made = _existing(session, [statement_id(a.owner, day, a.currency) for a in accounts])
    accounts = [a for a in accounts if statement_id(a.owner, day, a.currency) not in made]
    if not accounts:
        return sorted(made)
    cutoff = day_cutoff(day, now)
    ids = [a.id for a in accounts]
    previous = _previous_statements(session, ids)
    marks = _marks(session, ids)
    new = _new_sums(session, marks, cutoff)
    written = datetime.now(UTC)
    statements: list[dict[str, Any]] = []
    for account in accounts:
        sequence, opening = previous.get(account.id, (0, 0))
        current = normal_balance(AccountKind.MERCHANT_AVAILABLE, account.balance)
        count = new.counts.get(account.id, 0)
        if not count and (opening <= 0 or current <= 0):
            continue  # nothing new to state and nothing to pay
        totals = statement_totals(
            opening_balance=opening,
            current_balance=current,
            entries=new.entries.get(account.id, []),
            released_orders=new.released.get(account.id, []),
        )
        if totals.payout_amount > max(current, 0):  # never: a payout is at most the balance
            raise InsufficientFunds(account.id, current - totals.payout_amount)
        statements.append(
            {
                "id": statement_id(account.owner, day, account.currency),
                "merchant_id": account.owner,
                "day": day.isoformat(),
                "currency": account.currency,
                "sequence": sequence + 1,
                "cutoff": cutoff,
                "created_at": written,
                "covers_through": new.through.get(account.id, marks.get(account.id, 0)),
                **totals.model_dump(),
            }
        )
    if statements:
        session.execute(insert(_STATEMENTS), statements)
        _start_payouts(session, [s for s in statements if s["payout_amount"] > 0], written)
    return sorted(made | {s["id"] for s in statements})


def covered_entry_ids(statement: Statement) -> CompoundSelect[Any]:
    """The ids of the entries the statement covers: those of its range (the postings on
    its merchant's available balance after the mark of the statements before it, up to
    its `covers_through`: none when it has none), those statement_entries lists (a
    statement made before revision 0016), and its payout's own."""
    p, e, c, s = _POSTINGS.c, _ENTRIES.c, _COVERED.c, _STATEMENTS.c
    listed = core_select(c.entry_id).where(c.statement_id == statement.id)
    own_payout = core_select(e.id).where(
        e.id == payout_entry_id(payout_id(statement.id), "started")
    )
    same_account = (s.merchant_id == statement.merchant_id) & (s.currency == statement.currency)
    before = (
        core_select(func.coalesce(func.max(s.covers_through), 0))
        .where(same_account, s.sequence == statement.sequence - 1)
        .scalar_subquery()
    )
    through = core_select(s.covers_through).where(s.id == statement.id).scalar_subquery()
    available = account_id(
        AccountKind.MERCHANT_AVAILABLE, statement.merchant_id, statement.currency
    )
    in_range = (p.account == available) & (p.id > before) & (p.id <= through)
    ranged = _covered_by_none(core_select(e.id).select_from(_POSTINGS).where(in_range))
    return union(listed, ranged, own_payout)


def statements_payouts(
    session: Session, statements: Sequence[str], *, pending_only: bool = False
) -> list[Row[Any]]:
    """The payouts of these statements (id, statement, merchant, amount, currency, credit
    currency, and the merchant's name), in statement id order; those the bank has not
    answered, if asked."""
    payouts, merchants, conversions = _PAYOUTS.c, _MERCHANTS.c, _PAYOUT_CONVERSIONS.c
    query = (
        core_select(
            payouts.id,
            payouts.statement_id,
            payouts.merchant_id,
            payouts.amount,
            payouts.currency,
            conversions.credit_currency,
            merchants.name,
        )
        .join_from(_PAYOUTS, _MERCHANTS, merchants.id == payouts.merchant_id, isouter=True)
        .join_from(_PAYOUTS, _PAYOUT_CONVERSIONS, conversions.payout_id == payouts.id, isouter=True)
        .where(payouts.statement_id.in_(statements))
        .order_by(payouts.statement_id)
    )
    if pending_only:
        query = query.where(payouts.status == PayoutStatus.PENDING.value)
    return list(session.execute(query).all())


def statement_payout(session: Session, statement: Statement) -> Payout | None:
    return session.exec(select(Payout).where(Payout.statement_id == statement.id)).first()


def mark_payout_paid(session: Session, payout_key: str, bank_reference: str | None) -> Payout:
    """The bank confirmed: the money leaves in transit (once)."""
    return _finish_payout(session, payout_key, paid=True, detail=bank_reference)


def record_credit(session: Session, payout_key: str, credited: PayoutCredit | None) -> None:
    """What the bank credited for a paid payout, on its conversion row; the first report
    stands. A payout refused first, then reported paid, keeps no credit. A report that
    does not answer what was asked (a conversion nobody asked for, none for one that was,
    another currency) is logged as an error and records no credit."""
    payout = _locked_payout(session, payout_key)
    if payout.status == PayoutStatus.PAID:
        _record_credit(session, payout, credited)


def _record_credit(session: Session, payout: Payout, credited: PayoutCredit | None) -> None:
    conversion = session.get(PayoutConversion, payout.id, with_for_update=True)
    asked = None if conversion is None else conversion.credit_currency
    if asked != (None if credited is None else credited.currency):
        # The payout itself is recorded (our books are right whatever the bank credited);
        # the difference is for someone to look at, not a reason to stop the settlement.
        log.error(
            "payout %s: asked to credit %s, the bank reports %s",
            payout.id,
            asked,
            credited,
            extra={"payout_id": payout.id, "event": "payout_credit_mismatch"},
        )
        return
    if conversion is None or credited is None:
        return
    if conversion.credited_amount is None:
        conversion.credited_amount = credited.amount
        conversion.credit_rate = credited.rate
        conversion.updated_at = datetime.now(UTC)
    elif (conversion.credited_amount, conversion.credit_rate) != (credited.amount, credited.rate):
        log.warning(
            "payout %s: the bank reported another credit; the first stands",
            payout.id,
            extra={"payout_id": payout.id, "event": "payout_credit_mismatch"},
        )


def payout_conversion(session: Session, payout_key: str) -> PayoutConversion | None:
    """The payout's conversion by the bank, if it was asked for one."""
    return session.get(PayoutConversion, payout_key)


def mark_payout_returned(session: Session, payout_key: str, reason: str) -> Payout:
    """The bank refused: the money returns to the merchant's available balance (once)."""
    return _finish_payout(session, payout_key, paid=False, detail=reason)


def _finish_payout(session: Session, payout_key: str, *, paid: bool, detail: str | None) -> Payout:
    payout = _locked_payout(session, payout_key)
    if payout.status != PayoutStatus.PENDING:
        return payout  # a repeat, or a late answer: the first outcome stands
    step, kind, postings = (
        ("paid", EntryKind.PAYOUT_PAID, payout_paid_postings)
        if paid
        else ("returned", EntryKind.PAYOUT_RETURNED, payout_return_postings)
    )
    post_entry(
        session,
        entry_id=payout_entry_id(payout.id, step),
        kind=kind,
        currency=payout.currency,
        postings=postings(payout.merchant_id, payout.currency, payout.amount),
        merchant_id=payout.merchant_id,
    )
    payout.status = PayoutStatus.PAID if paid else PayoutStatus.FAILED
    if paid:
        payout.bank_reference = detail
    else:
        payout.failure_reason = detail
    payout.updated_at = datetime.now(UTC)
    return payout


def _locked_available(
    session: Session, merchant_ids: Sequence[str], currency: str | None
) -> list[Row[Any]]:
    """The merchants' available accounts (id, owner, currency, balance), locked in id order."""
    accounts = _ACCOUNTS.c
    query = (
        core_select(accounts.id, accounts.owner, accounts.currency, accounts.balance)
        .where(
            accounts.kind == AccountKind.MERCHANT_AVAILABLE.value,
            accounts.owner.in_(merchant_ids),
        )
        .order_by(accounts.id)
        .with_for_update()
    )
    if currency is not None:
        query = query.where(accounts.currency == currency)
    return list(session.execute(query).all())


def _existing(session: Session, statement_ids: Sequence[str]) -> set[str]:
    query = core_select(_STATEMENTS.c.id).where(_STATEMENTS.c.id.in_(statement_ids))
    return set(session.execute(query).scalars())


def _previous_statements(session: Session, accounts: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per available account, its latest statement's (sequence, closing balance)."""
    a, s, each = _ACCOUNTS.c, _STATEMENTS.c, _STATEMENTS.alias("each_statement").c
    latest = (
        core_select(func.max(each.sequence))
        .where(each.merchant_id == a.owner, each.currency == a.currency)
        .scalar_subquery()
    )
    query = (
        core_select(a.id, s.sequence, s.closing_balance)
        .join(_STATEMENTS, (s.merchant_id == a.owner) & (s.currency == a.currency))
        .where(a.id.in_(accounts), s.sequence == latest)
    )
    return {account: (sequence, closing) for account, sequence, closing in session.execute(query)}


def _mark(owner: Any, currency: Any) -> Any:
    """The last posting id the statements of (owner, currency) cover, or 0: the account's
    postings after it are covered by none (but those statement_entries lists). Each
    statement's `covers_through` is at least the one's before it, so the mark is the
    latest statement's: one probe of uq_statements_sequence."""
    s = _STATEMENTS.c
    latest = (
        core_select(s.covers_through)
        .where(s.merchant_id == owner, s.currency == currency)
        .order_by(s.sequence.desc())
        .limit(1)
        .correlate_except(_STATEMENTS)  # to the accounts of whichever query encloses it
        .scalar_subquery()
    )
    return func.coalesce(latest, 0)


def _marks(session: Session, accounts: Sequence[str]) -> dict[str, int]:
    """Each available account's mark (`_mark`)."""
    a = _ACCOUNTS.c
    query = core_select(a.id, _mark(a.owner, a.currency)).where(a.id.in_(accounts))
    return {account: int(mark) for account, mark in session.execute(query)}


def _covered_by_none(postings: Select[Any]) -> Select[Any]:
    """`postings` (FROM postings) joined to their entries, without a payout's own posting
    (its statement's by the payout row) and without those of entries a statement made
    before revision 0016 lists."""
    p, e, c = _POSTINGS.c, _ENTRIES.c, _COVERED.c
    listed = core_select(c.entry_id).where(c.entry_id == e.id)
    return postings.join(_ENTRIES, e.id == p.entry_id).where(
        e.kind != EntryKind.PAYOUT_STARTED.value, ~listed.exists()
    )


def _new_postings(marks: dict[str, int]) -> Select[Any]:
    """The accounts of their postings after their marks (account -> mark) that no
    statement covers: each account's range of ix_postings_account_id, from its mark on."""
    p = _POSTINGS.c
    ranges = [(p.account == account) & (p.id > mark) for account, mark in sorted(marks.items())]
    return _covered_by_none(core_select(p.account).select_from(_POSTINGS).where(or_(*ranges)))


def _first_uncovered(account: Any, owner: Any, currency: Any, cutoff: datetime) -> Any:
    """The account if it has a new posting before `cutoff`, else NULL: a probe of its
    range after its mark that stops at the first. (As a LIMIT 1 subquery, not EXISTS:
    PostgreSQL turns an EXISTS into a join it may plan as a scan of every posting.)"""
    p, e = _POSTINGS.c, _ENTRIES.c
    after_mark = (p.account == account) & (p.id > _mark(owner, currency))
    query = _covered_by_none(core_select(p.account).select_from(_POSTINGS).where(after_mark))
    return query.where(e.created_at < cutoff).limit(1).scalar_subquery()


@dataclass
class _NewSums:
    """Per account, what its statement covers: the sums per entry kind (credit-normal),
    the count of postings, the released orders' splits, and the last posting's id."""

    entries: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    released: dict[str, list[Split]] = field(default_factory=dict)
    through: dict[str, int] = field(default_factory=dict)


def _new_sums(session: Session, marks: dict[str, int], cutoff: datetime) -> _NewSums:
    """What each account's statement covers: its new postings up to the first stamped at
    or after `cutoff`, in one GROUP BY over its new postings (those before and after the
    cutoff apart, with their lowest and highest ids).

    Stamps follow the numbering on an account where every writer's clock agrees; where
    one stamped after the cutoff is numbered before one stamped before it (clocks of two
    hosts apart), the account is summed again up to that posting, and the rest waits for
    the next statement."""
    rows = _by_keys(session, _sums_query(_new_postings(marks), cutoff))
    before = [row for row in rows if row.before]
    stop: dict[str, int] = {}
    for row in rows:
        if not row.before:
            stop[row.account] = min(stop.get(row.account, row.first), row.first)
    summed = _NewSums()
    _add_sums(summed, before)
    for account, first_after in sorted(stop.items()):
        if summed.through.get(account, 0) > first_after:
            for sums in (summed.entries, summed.counts, summed.released, summed.through):
                sums.pop(account, None)
            p = _POSTINGS.c
            alone = _new_postings({account: marks[account]})
            again = _sums_query(alone.where(p.id < first_after), cutoff)
            _add_sums(summed, _by_keys(session, again))
    return summed


# What PostgreSQL's default costs would have a page's GROUP BY do: a hash join over a scan
# of every entry (some thousands of postings are "many"), compiled by JIT first.
_SCANS = ("enable_hashjoin", "enable_mergejoin", "jit")


def _by_keys(session: Session, query: Select[Any]) -> list[Row[Any]]:
    """The rows of `query` (a page's new postings with their entries and orders), which
    PostgreSQL reads by the keys: nested loops over the indexes, not compiled. Measured at
    1,000,000 orders (a page of 100 merchants, 10,000 postings): planned by the default
    costs, a hash join over a scan of the 2,000,000 entries and JIT's compilation, 0.66 s
    a page, growing with the books; by the keys 0.07 s. SQLite reads them by the keys as
    it is. The settings are the transaction's own, and set back after the query."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        for setting in _SCANS:
            session.execute(text(f"SET LOCAL {setting} = off"))
    rows = list(session.execute(query))
    if postgres:
        for setting in _SCANS:
            session.execute(text(f"SET LOCAL {setting} TO DEFAULT"))
    return rows


def _sums_query(postings: Select[Any], cutoff: datetime) -> Select[Any]:
    """`postings` (of `_new_postings`) grouped per account, entry kind, released order's
    split, and stamped before `cutoff` or not: the sum, the count, the lowest and the
    highest posting id. An order is released once, by an entry named after it, with one
    posting on available."""
    p, e, o = _POSTINGS.c, _ENTRIES.c, _ORDERS.c
    release = e.kind == EntryKind.FUNDS_RELEASED.value
    split_of = (o.payable_amount, o.channel_fee_rate, o.commission_rate)
    before = case((e.created_at < cutoff, 1), else_=0).label("before")
    return (
        postings.outerjoin(_ORDERS, (o.id == e.order_id) & release)
        .add_columns(
            e.kind,
            *split_of,
            before,
            func.sum(p.amount).label("amount"),
            func.count().label("n"),
            func.min(p.id).label("first"),
            func.max(p.id).label("last"),
        )
        .group_by(p.account, e.kind, *split_of, before)
    )


def _add_sums(summed: _NewSums, rows: Sequence[Row[Any]]) -> None:
    """Rows of `_sums_query`, stamped before the cutoff, into `summed` (each distinct
    amount and rates split once by domain.split, as many times as orders have it)."""
    by_kind: dict[tuple[str, str], int] = {}
    for row in rows:
        account, kind, count = row.account, row.kind, int(row.n)
        by_kind[account, kind] = by_kind.get((account, kind), 0) - int(row.amount)
        summed.counts[account] = summed.counts.get(account, 0) + count
        summed.through[account] = max(summed.through.get(account, 0), int(row.last))
        if kind == EntryKind.FUNDS_RELEASED.value:
            split = split_payment(
                row.payable_amount, Decimal(row.channel_fee_rate), Decimal(row.commission_rate)
            )
            summed.released.setdefault(account, []).extend([split] * count)
    for (account, kind), amount in by_kind.items():
        summed.entries.setdefault(account, []).append((kind, amount))


def _start_payouts(session: Session, statements: Sequence[dict[str, Any]], now: datetime) -> None:
    """Each statement's payout: its row and its available -> in transit entry (the
    statement's by the payout row: the payout is its own movement, never the next one's
    nor in any range), the
    in-transit accounts made where missing, and both balances moved, accounts in id order."""
    if not statements:
        return
    entries: list[dict[str, Any]] = []
    postings: list[dict[str, Any]] = []
    payouts: list[dict[str, Any]] = []
    in_transit: list[dict[str, Any]] = []
    moves: dict[str, int] = {}  # account -> debit-positive change
    for statement in statements:
        merchant, currency, amount = (
            statement["merchant_id"],
            statement["currency"],
            statement["payout_amount"],
        )
        key = payout_id(statement["id"])
        entry = payout_entry_id(key, "started")
        entries.append(
            {
                "id": entry,
                "order_id": None,
                "merchant_id": merchant,
                "kind": EntryKind.PAYOUT_STARTED.value,
                "currency": currency,
                "reverses_entry_id": None,
                "created_at": now,
            }
        )
        for line in payout_start_postings(merchant, currency, amount):
            postings.append(
                {
                    "entry_id": entry,
                    "account": line.account,
                    "currency": currency,
                    "amount": line.amount,
                }
            )
            moves[line.account] = moves.get(line.account, 0) + line.amount
        in_transit.append(
            {
                "id": account_id(AccountKind.MERCHANT_IN_TRANSIT, merchant, currency),
                "kind": AccountKind.MERCHANT_IN_TRANSIT.value,
                "owner": merchant,
                "currency": currency,
                "balance": 0,
                "updated_at": now,
            }
        )
        payouts.append(
            {
                "id": key,
                "statement_id": statement["id"],
                "merchant_id": merchant,
                "amount": amount,
                "currency": currency,
                "status": PayoutStatus.PENDING.value,
                "failure_reason": None,
                "bank_reference": None,
                "created_at": now,
                "updated_at": now,
            }
        )
    session.execute(_insert_ignore(session, _ACCOUNTS), in_transit)
    session.execute(insert(_ENTRIES), entries)
    session.execute(insert(_POSTINGS), postings)
    accounts = _ACCOUNTS.c
    session.execute(
        update(_ACCOUNTS)
        .where(accounts.id == bindparam("b_id"))
        .values(balance=accounts.balance + bindparam("b_delta"), updated_at=bindparam("b_at")),
        [{"b_id": a, "b_delta": delta, "b_at": now} for a, delta in sorted(moves.items())],
    )
    session.execute(insert(_PAYOUTS), payouts)
    _ask_conversions(session, payouts, now)
    _expire_accounts(session, set(moves))


def _ask_conversions(session: Session, payouts: Sequence[dict[str, Any]], now: datetime) -> None:
    """A conversion row for each new payout of a merchant that is credited in its
    settlement currency (`merchant_fx_terms.convert_payouts`) when that is not the
    payout's. The opt-in is read only for payouts whose currency differs from their
    merchant's settlement currency: a database whose merchants have none (books written
    before revision 0013, in tests) is never asked for it."""
    columns = _MERCHANTS.c
    merchants = sorted({p["merchant_id"] for p in payouts})
    query = core_select(columns.id, columns.settlement_currency).where(columns.id.in_(merchants))
    settled_in = {row.id: row.settlement_currency for row in session.execute(query)}
    differing = [
        p for p in payouts if settled_in.get(p["merchant_id"]) not in (None, p["currency"])
    ]
    if not differing:
        return
    terms = _FX_TERMS.c
    opted_in = set(
        session.scalars(
            core_select(terms.merchant_id).where(
                terms.merchant_id.in_(sorted({p["merchant_id"] for p in differing})),
                terms.convert_payouts.is_(True),
            )
        )
    )
    rows = [
        {
            "payout_id": p["id"],
            "currency": p["currency"],
            "credit_currency": settled_in[p["merchant_id"]],
            "credited_amount": None,
            "credit_rate": None,
            "updated_at": now,
        }
        for p in differing
        if p["merchant_id"] in opted_in
    ]
    if rows:
        session.execute(insert(_PAYOUT_CONVERSIONS), rows)


def _insert_ignore(session: Session, table: Table) -> Insert:
    dialect = session.get_bind().dialect.name
    insert_of = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_of(table).on_conflict_do_nothing()


def _expire_accounts(session: Session, moved: set[str]) -> None:
    """The caller's ORM objects of the accounts moved here read their balances anew."""
    for instance in list(session.identity_map.values()):
        if isinstance(instance, Account) and instance.id in moved:
            session.expire(instance)


def _locked_payout(session: Session, payout_key: str) -> Payout:
    return session.exec(select(Payout).where(Payout.id == payout_key).with_for_update()).one()
