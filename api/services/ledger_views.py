"""Synchronous ledger reads behind the ledger routes (run in a worker thread).

Lists of entries (a merchant's ledger, an account's postings) are newest first.
Entry ids are business keys (`{order}:settlement`, `po-...:started`), not
time-ordered, so such a list is ordered by (created_at desc, id desc), the id
breaking ties between entries of the same instant. The cursor is still the last
entry's id, as in every other list of the API: the next page looks that entry up
and continues strictly after its (created_at, id). Entries are immutable, so a
cursor's position never moves: following cursors gives every entry once, with no
gaps, while new entries arrive ahead of the pages already read (save one stamped
before, but committed after, a page was read: the limit of any time-keyed feed).
We chose this over an opaque encoded (created_at, id) cursor because ids are what
callers already hold and log, and over `Posting.id` because an entry has several
postings and that surrogate key means nothing to a caller. Statements page the same way by
(day desc, id desc).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import and_
from sqlmodel import Session, col, select

from api.errors import NotFound
from api.ledger_schemas import (
    AccountDetail,
    AccountOut,
    AccountPage,
    AccountPosting,
    AccountPostingPage,
    CurrencyTotal,
    EntryPosting,
    LedgerEntry,
    LedgerEntryPage,
    MerchantBalance,
    MerchantBalances,
    PayoutOut,
    StatementDetail,
    StatementEntryOut,
    StatementFx,
    StatementOrder,
    StatementOut,
    StatementPage,
    TrialBalance,
    TrialBalanceAccount,
)
from api.pagination import Keyset, bad_cursor, fetch_page
from db.channel_conversions import order_conversions
from db.engine import read_one_snapshot
from db.fx_books import order_quote
from db.order_money import order_split
from db.reconcile import account_drift, trial_balance
from db.settlement import covered_entry_ids, payout_conversion, statement_payout
from db.tables import (
    Account,
    JournalEntry,
    Merchant,
    Order,
    Payout,
    Posting,
    Statement,
)
from domain.ledger import MERCHANT_BALANCES, AccountKind, EntryKind, account_id, normal_balance

_MERCHANT_KINDS = [kind.value for kind in MERCHANT_BALANCES]
_NEWEST_ENTRIES_FIRST = Keyset((JournalEntry.created_at, JournalEntry.id))
_NEWEST_STATEMENTS_FIRST = Keyset((Statement.day, Statement.id))
_ACCOUNTS_BY_ID = Keyset((Account.id,), descending=False)


# -- merchants -------------------------------------------------------------------


def merchant_balances(session: Session, merchant_id: str) -> MerchantBalances:
    """Pending, available and in transit per currency the merchant has any account in."""
    _check_merchant(session, merchant_id)
    accounts = session.exec(
        select(Account).where(Account.owner == merchant_id, col(Account.kind).in_(_MERCHANT_KINDS))
    ).all()
    by_currency: dict[str, dict[AccountKind, int]] = defaultdict(dict)
    for account in accounts:
        kind = AccountKind(account.kind)
        by_currency[account.currency][kind] = normal_balance(kind, account.balance)
    return MerchantBalances(
        merchant_id=merchant_id,
        balances=[
            MerchantBalance(
                currency=currency,
                pending=held.get(AccountKind.MERCHANT_PENDING, 0),
                available=held.get(AccountKind.MERCHANT_AVAILABLE, 0),
                in_transit=held.get(AccountKind.MERCHANT_IN_TRANSIT, 0),
            )
            for currency, held in sorted(by_currency.items())
        ],
    )


def merchant_entries(
    session: Session,
    merchant_id: str,
    currency: str | None,
    limit: int,
    starting_after: str | None,
) -> LedgerEntryPage:
    """The merchant's entries, newest first, each with its postings on the merchant's accounts."""
    _check_merchant(session, merchant_id)
    query = select(JournalEntry).where(JournalEntry.merchant_id == merchant_id)
    if currency is not None:
        query = query.where(JournalEntry.currency == currency)
    cursor = None
    if starting_after is not None:
        cursor = session.get(JournalEntry, starting_after)
        if cursor is None or cursor.merchant_id != merchant_id:
            raise bad_cursor(starting_after)
    page = fetch_page(session, _NEWEST_ENTRIES_FIRST.ordered(query, cursor), limit)
    postings = _merchant_postings(session, merchant_id, [entry.id for entry in page.items])
    return LedgerEntryPage(
        data=[
            LedgerEntry(
                id=entry.id,
                kind=entry.kind,
                currency=entry.currency,
                order_id=entry.order_id,
                created_at=entry.created_at,
                postings=postings[entry.id],
            )
            for entry in page.items
        ],
        has_more=page.has_more,
        next_cursor=page.next_cursor(lambda entry: entry.id),
    )


def merchant_statements(
    session: Session, merchant_id: str, limit: int, starting_after: str | None
) -> StatementPage:
    """The merchant's statements, newest day first."""
    _check_merchant(session, merchant_id)
    query = select(Statement).where(Statement.merchant_id == merchant_id)
    cursor = None
    if starting_after is not None:
        cursor = session.get(Statement, starting_after)
        if cursor is None or cursor.merchant_id != merchant_id:
            raise bad_cursor(starting_after)
    page = fetch_page(session, _NEWEST_STATEMENTS_FIRST.ordered(query, cursor), limit)
    return StatementPage(
        data=[_statement_out(statement) for statement in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor(lambda statement: statement.id),
    )


# -- statements and payouts --------------------------------------------------------


def statement_detail(session: Session, statement_id: str) -> StatementDetail:
    """The statement's numbers, its payout, and every entry it covers.

    Each covered entry shows what it moved on the merchant's available balance, so
    opening + the sum of `orders[].released` and `entries[].amount` = closing
    (`entries` includes the statement's own payout_started entry).
    """
    read_one_snapshot(session)
    statement = session.get(Statement, statement_id)
    if statement is None:
        raise statement_not_found(statement_id)
    covered = _covered_entries(session, statement)
    released_ids = [e.order_id for e, _ in covered if _is_release(e) and e.order_id is not None]
    orders = {o.id: o for o in session.exec(select(Order).where(col(Order.id).in_(released_ids)))}
    lines: list[StatementOrder] = []
    others: list[StatementEntryOut] = []
    for entry, amount in covered:
        order = orders.get(entry.order_id or "")
        if _is_release(entry) and order is not None:
            split = order_split(order)  # the split the statement's totals were made from
            lines.append(
                StatementOrder(
                    order_id=order.id,
                    gross=split.payable_amount,
                    channel_fee=split.channel_fee_amount,
                    commission=split.commission_amount,
                    refunded_before_release=split.merchant_net_amount - amount,
                    released=amount,
                    fx=_fx_line(session, order),
                )
            )
        else:
            others.append(
                StatementEntryOut(
                    entry_id=entry.id, kind=entry.kind, order_id=entry.order_id, amount=amount
                )
            )
    payout = statement_payout(session, statement)
    return StatementDetail(
        **_statement_out(statement).model_dump(),
        payout=None if payout is None else _payout_out(session, payout),
        orders=lines,
        entries=others,
    )


def payout_detail(session: Session, payout_id: str) -> PayoutOut:
    payout = session.get(Payout, payout_id)
    if payout is None:
        raise payout_not_found(payout_id)
    return _payout_out(session, payout)


# -- operators -------------------------------------------------------------------


def list_accounts(
    session: Session,
    kind: AccountKind | None,
    owner: str | None,
    currency: str | None,
    limit: int,
    starting_after: str | None,
) -> AccountPage:
    """Accounts in id order; the cursor is the last account id of a page."""
    query = select(Account)
    if kind is not None:
        query = query.where(Account.kind == kind.value)
    if owner is not None:
        query = query.where(Account.owner == owner)
    if currency is not None:
        query = query.where(Account.currency == currency)
    cursor = None
    if starting_after is not None:
        cursor = session.get(Account, starting_after)
        if cursor is None:
            raise bad_cursor(starting_after)
    page = fetch_page(session, _ACCOUNTS_BY_ID.ordered(query, cursor), limit)
    return AccountPage(
        data=[_account_out(account) for account in page.items],
        has_more=page.has_more,
        next_cursor=page.next_cursor(lambda account: account.id),
    )


def account_detail(
    session: Session, account: str, limit: int, starting_after: str | None
) -> AccountDetail:
    """The account and its postings, newest first, paged by entry id (one posting each)."""
    row = session.get(Account, account)
    if row is None:
        raise NotFound("account_not_found", f"no account {account}", "account_id")
    kind = AccountKind(row.kind)
    query = (
        select(Posting, JournalEntry)
        .join(JournalEntry, col(JournalEntry.id) == Posting.entry_id)
        .where(Posting.account == row.id)
    )
    cursor = None
    if starting_after is not None:
        cursor = session.get(JournalEntry, starting_after)
        if cursor is None:
            raise bad_cursor(starting_after)
    page = fetch_page(session, _NEWEST_ENTRIES_FIRST.ordered(query, cursor), limit)
    postings = AccountPostingPage(
        data=[
            AccountPosting(
                entry_id=entry.id,
                entry_kind=entry.kind,
                order_id=entry.order_id,
                merchant_id=entry.merchant_id,
                amount=normal_balance(kind, posting.amount),
                debit_amount=posting.amount,
                created_at=entry.created_at,
            )
            for posting, entry in page.items
        ],
        has_more=page.has_more,
        next_cursor=page.next_cursor(lambda row: row[1].id),
    )
    return AccountDetail(account=_account_out(row), postings=postings)


def read_trial_balance(session: Session) -> TrialBalance:
    """Totals per currency, every account, and drift, all read from one snapshot."""
    read_one_snapshot(session)
    totals = trial_balance(session)
    drift = account_drift(session)
    accounts = session.exec(select(Account).order_by(col(Account.id))).all()
    return TrialBalance(
        currencies=[CurrencyTotal(currency=c, total=t) for c, t in sorted(totals.items())],
        balanced=all(total == 0 for total in totals.values()),
        accounts=[
            TrialBalanceAccount(
                id=a.id,
                kind=AccountKind(a.kind),
                owner=a.owner,
                currency=a.currency,
                balance=normal_balance(AccountKind(a.kind), a.balance),
            )
            for a in accounts
        ],
        drift=drift,
    )


# -- helpers ---------------------------------------------------------------------


def _check_merchant(session: Session, merchant_id: str) -> None:
    if session.get(Merchant, merchant_id) is None:
        raise NotFound("merchant_not_found", f"no merchant {merchant_id}", "merchant_id")


def _merchant_postings(
    session: Session, merchant_id: str, entry_ids: Sequence[str]
) -> dict[str, list[EntryPosting]]:
    rows = session.exec(
        select(Posting, Account.kind)
        .join(Account, col(Account.id) == Posting.account)
        .where(
            col(Posting.entry_id).in_(entry_ids),
            Account.owner == merchant_id,
            col(Account.kind).in_(_MERCHANT_KINDS),
        )
        .order_by(col(Posting.id))
    ).all()
    postings: dict[str, list[EntryPosting]] = defaultdict(list)
    for posting, kind in rows:
        account_kind = AccountKind(kind)
        postings[posting.entry_id].append(
            EntryPosting(
                account=posting.account,
                kind=account_kind,
                amount=normal_balance(account_kind, posting.amount),
            )
        )
    return postings


def _covered_entries(session: Session, statement: Statement) -> list[tuple[JournalEntry, int]]:
    """The statement's entries in posting order, with what each moved on available."""
    available = account_id(
        AccountKind.MERCHANT_AVAILABLE, statement.merchant_id, statement.currency
    )
    rows = session.exec(
        select(JournalEntry, Posting.amount)
        .outerjoin(
            Posting,
            and_(col(Posting.entry_id) == JournalEntry.id, col(Posting.account) == available),
        )
        .where(col(JournalEntry.id).in_(covered_entry_ids(statement)))
        .order_by(col(JournalEntry.created_at), col(JournalEntry.id))
    ).all()
    return [
        (entry, normal_balance(AccountKind.MERCHANT_AVAILABLE, amount or 0))
        for entry, amount in rows
    ]


def _fx_line(session: Session, order: Order) -> StatementFx | None:
    quote = order_quote(session, order)
    if quote is None:
        return _channel_fx_line(session, order)
    return StatementFx(
        presentment_amount=quote.presentment_amount,
        presentment_currency=quote.presentment_currency,
        customer_rate=str(quote.customer_rate),
        markup_bps=quote.markup_bps,
    )


def _channel_fx_line(session: Session, order: Order) -> StatementFx | None:
    """A wallet converted the order's price for its buyer: what the buyer paid, at its rate."""
    paid = [c for c in order_conversions(session, order.id) if c.kind == "payment"]
    if not paid:
        return None
    return StatementFx(
        presentment_amount=paid[-1].payer_amount,
        presentment_currency=paid[-1].payer_currency,
        customer_rate=paid[-1].channel_rate,
        markup_bps=0,
        converted_by="channel",
    )


def _is_release(entry: JournalEntry) -> bool:
    return entry.kind == EntryKind.FUNDS_RELEASED.value


def _statement_out(statement: Statement) -> StatementOut:
    return StatementOut.model_validate(statement, from_attributes=True)


def _payout_out(session: Session, payout: Payout) -> PayoutOut:
    shown = PayoutOut.model_validate(payout, from_attributes=True)
    conversion = payout_conversion(session, payout.id)
    if conversion is None:
        return shown
    return shown.model_copy(
        update={
            "credit_currency": conversion.credit_currency,
            "credited_amount": conversion.credited_amount,
            "credit_rate": conversion.credit_rate,
        }
    )


def _account_out(account: Account) -> AccountOut:
    kind = AccountKind(account.kind)
    return AccountOut(
        id=account.id,
        kind=kind,
        owner=account.owner,
        currency=account.currency,
        balance=normal_balance(kind, account.balance),
        debit_balance=account.balance,
    )


def statement_not_found(statement_id: str) -> NotFound:
    return NotFound("statement_not_found", f"no statement {statement_id}", "statement_id")


def payout_not_found(payout_id: str) -> NotFound:
    return NotFound("payout_not_found", f"no payout {payout_id}", "payout_id")
